//! Reading the files a policy directory consists of: regular files only, of bounded size.

use std::path::Path;

/// The largest policy, test case or config file read.
pub const MAX_POLICY_FILE_BYTES: u64 = 8 << 20;
/// The largest decision log key file read.
pub const MAX_KEY_BYTES: u64 = 64 << 10;

/// Reads a file that must be a regular file (symbolic links followed) of at most `max`
/// bytes. Anything else is an error rather than a wait or a flood: opening a FIFO for reading
/// blocks until a writer comes (a reload thread once waited forever), and a link to
/// `/dev/zero` never ends. The file is opened without blocking and checked again on the open
/// handle, so swapping it for a FIFO between the two checks changes nothing.
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let not_regular = |m: &std::fs::Metadata| {
        let what = if m.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        std::io::Error::new(std::io::ErrorKind::InvalidInput, what)
    };
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    if meta.len() > max {
        return Err(too_large(meta.len(), max));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The length may grow while reading: read one byte past the limit to notice.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64, max));
    }
    Ok(bytes)
}

fn too_large(len: u64, max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{len} bytes or more, larger than the {max} bytes allowed"),
    )
}

/// Who besides its owner can reach a file holding a secret (the decision log's HMAC key,
/// the TLS private key), judged the way OpenSSH judges private keys, with room for the
/// usual service layout: a key owned by root and readable by the service's own group
/// (`root:editgate`, mode 0640) is private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAccess {
    /// Only its owner and a group this process runs in can reach it.
    Private,
    /// A group this process does not run in can reach it (a warning: its members can read
    /// the secret).
    Group {
        /// The permission bits.
        mode: u32,
        /// The file's group.
        gid: u32,
    },
    /// Every user on the host can reach it (an error: the secret is public).
    World {
        /// The permission bits.
        mode: u32,
    },
}

impl SecretAccess {
    /// What is wrong, in words, for the secret `what` at `path`, whose exposure lets a reader
    /// do `risk`: `None` when private; `Some((true, ..))` when the file must be refused.
    pub fn problem(self, what: &str, path: &Path, risk: &str) -> Option<(bool, String)> {
        let path = path.display();
        match self {
            Self::Private => None,
            Self::World { mode } => Some((
                true,
                format!(
                    "{what} `{path}` can be read by every user on this host (mode {mode:04o}), who could {risk}; make it readable by editgate only: `chmod 600 {path}`, or `chmod 640` with the service's group"
                ),
            )),
            Self::Group { mode, gid } => Some((
                false,
                format!(
                    "{what} `{path}` can be read by group {gid}, which this process does not run in (mode {mode:04o}); its members could {risk}: `chmod 600 {path}`, or give it the service's own group (`chgrp editgate`)"
                ),
            )),
        }
    }
}

/// How exposed the secret file at `path` is (symbolic links followed). Not a regular file
/// is an error, as for [`read_regular`].
pub fn secret_access(path: &Path) -> std::io::Result<SecretAccess> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mode = meta.mode() & 0o7777;
    Ok(if mode & 0o007 != 0 {
        SecretAccess::World { mode }
    } else if mode & 0o070 != 0 && !process_groups().contains(&meta.gid()) {
        SecretAccess::Group { mode, gid: meta.gid() }
    } else {
        SecretAccess::Private
    })
}

/// The effective and supplementary groups of this process, from `/proc/self/status` (std
/// has no `getgroups`, and the project forbids the `unsafe` a libc call needs). Empty when
/// it cannot be read, so that a group-readable secret is then reported.
fn process_groups() -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Vec::new();
    };
    let ids = |line: &str| {
        line.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect::<Vec<u32>>()
    };
    let mut out = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Gid:") {
            // real, effective, saved, filesystem: the effective one decides access.
            out.extend(ids(rest).get(1));
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            out.extend(ids(rest));
        }
    }
    out
}

/// `bytes` in lower-case hex (digests in file names, sidecars, policy versions and the
/// decision log).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    fn key_with_mode(mode: u32) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "0123456789abcdef0123").unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn a_key_readable_by_everyone_is_refused_and_one_for_its_owner_is_private() {
        for mode in [0o644, 0o604, 0o602, 0o666, 0o601] {
            let f = key_with_mode(mode);
            assert_eq!(secret_access(f.path()).unwrap(), SecretAccess::World { mode });
            let (refused, why) = secret_access(f.path())
                .unwrap()
                .problem("the key", f.path(), "read it")
                .unwrap();
            assert!(refused, "{why}");
            assert!(why.contains(&format!("mode {mode:04o}")), "{why}");
        }
        for mode in [0o600, 0o400] {
            let f = key_with_mode(mode);
            assert_eq!(secret_access(f.path()).unwrap(), SecretAccess::Private);
        }
        // The file's group is this process's own (a temporary file takes it): 0640 is the
        // `root:editgate` layout.
        let f = key_with_mode(0o640);
        assert_eq!(secret_access(f.path()).unwrap(), SecretAccess::Private);
    }

    #[test]
    fn a_key_readable_by_a_foreign_group_is_reported() {
        use std::os::unix::fs::MetadataExt as _;
        let f = key_with_mode(0o640);
        // Only root may give a file a group it is not in; elsewhere this case cannot be set up.
        let foreign = 65_534;
        if std::os::unix::fs::chown(f.path(), None, Some(foreign)).is_err() || process_groups().contains(&foreign) {
            eprintln!("skipped: cannot give a file a group this process is not in");
            return;
        }
        assert_eq!(std::fs::metadata(f.path()).unwrap().gid(), foreign);
        let access = secret_access(f.path()).unwrap();
        assert_eq!(
            access,
            SecretAccess::Group {
                mode: 0o640,
                gid: foreign
            }
        );
        let (refused, why) = access.problem("the key", f.path(), "read it").unwrap();
        assert!(!refused && why.contains("group 65534"), "{why}");
    }

    #[test]
    fn this_process_has_groups() {
        assert!(!process_groups().is_empty());
    }

    #[test]
    fn a_directory_is_not_a_key() {
        let d = tempfile::tempdir().unwrap();
        assert!(secret_access(d.path()).is_err());
    }
}
