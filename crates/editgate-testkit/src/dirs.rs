//! Policy directories for tests: temporary ones from literal files, and copies of the shipped
//! `policies/`, for the core's and the service's integration tests alike.

use std::path::{Path, PathBuf};

/// The repository root (the workspace's), where `policies/` and `tests/fixtures/` live.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/<rel>` of the repository.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// The shipped `policies/` directory.
pub fn shipped_policies() -> PathBuf {
    repo().join("policies")
}

/// Copies the fixture `tests/fixtures/<fixture_rel>` to `dir/<to>`.
///
/// # Panics
/// When the fixture cannot be copied.
pub fn copy_fixture(dir: &Path, fixture_rel: &str, to: &str) {
    let path = dir.join(to);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::copy(fixture(fixture_rel), path).expect("copy fixture");
}

/// Writes `text` to `dir/rel`, creating parent directories. A new file gets mode 0600, as
/// the secrets among them must have (a decision log key readable by every user is refused).
///
/// # Panics
/// When the file cannot be written (a test helper: the test fails there).
pub fn write(dir: &Path, rel: &str, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write");
}

/// A temporary policy directory holding `files` (relative path, content).
///
/// # Panics
/// When a file cannot be written.
pub fn policy_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    dir
}

/// Copies a directory tree.
///
/// # Panics
/// When a file cannot be read or written.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
}

/// A copy of the shipped policy directory.
pub fn shipped_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&shipped_policies(), dir.path());
    dir
}

/// A copy of the shipped policy directory with `rules` appended to its `global.toml`.
///
/// # Panics
/// When the copy cannot be made.
pub fn shipped_with(rules: &str) -> tempfile::TempDir {
    let dir = shipped_copy();
    let global = dir.path().join("global.toml");
    let text = std::fs::read_to_string(&global).expect("global.toml") + "\n" + rules;
    std::fs::write(global, text).expect("write global.toml");
    dir
}

/// Gives `path` a POSIX ACL (`system.posix_acl_access`) with a named entry letting `uid`
/// read it (and `gid` too, when given), under a mask of `mask` (`4`: read): what `setfacl -m
/// u:UID:r` writes, without needing the `acl` package. `false` when the file system has no
/// ACLs.
pub fn grant_acl(path: &Path, uid: u32, gid: Option<u32>, mask: u16) -> bool {
    let mut entries: Vec<(u16, u16, u32)> = vec![(0x01, 6, u32::MAX), (0x02, 4, uid), (0x04, 0, u32::MAX)];
    if let Some(gid) = gid {
        entries.push((0x08, 4, gid));
    }
    entries.extend([(0x10, mask, u32::MAX), (0x20, 0, u32::MAX)]);
    let mut value = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        value.extend(tag.to_le_bytes());
        value.extend(perm.to_le_bytes());
        value.extend(id.to_le_bytes());
    }
    rustix::fs::setxattr(path, "system.posix_acl_access", &value, rustix::fs::XattrFlags::empty()).is_ok()
}
