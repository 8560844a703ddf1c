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
    let (file, len) = open_regular(path, max)?;
    let mut bytes = Vec::with_capacity(len as usize);
    // The length may grow while reading: read one byte past the limit to notice.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// Opens a regular file of at most `max` bytes for reading as a stream, with its length; the
/// same refusals as [`read_regular`] (a reader should still stop at `max + 1` bytes, in case
/// the file grows: [`Bounded`] does).
pub fn open_regular(path: &Path, max: u64) -> std::io::Result<(std::fs::File, u64)> {
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
    Ok((file, meta.len()))
}

/// The SHA-256 (hex) of a regular file of at most `max` bytes, read as a stream.
pub fn sha256_file(path: &Path, max: u64) -> std::io::Result<String> {
    let (file, _) = open_regular(path, max)?;
    let mut bounded = Bounded::new(file, max);
    std::io::copy(&mut bounded, &mut std::io::sink())?;
    Ok(bounded.sha256_hex())
}

/// A reader that fails once more than `max` bytes came through, and hashes what it reads
/// (SHA-256): a file read as a stream is bounded and identified as one read whole would be.
pub struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
    hash: sha2::Sha256,
}

impl<R> Bounded<R> {
    /// `inner`, bounded to `max` bytes.
    pub fn new(inner: R, max: u64) -> Self {
        use sha2::Digest as _;
        Self {
            inner,
            read: 0,
            max,
            hash: sha2::Sha256::new(),
        }
    }

    /// The SHA-256 of what was read, in hex.
    pub fn sha256_hex(self) -> String {
        use sha2::Digest as _;
        hex(&self.hash.finalize())
    }
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(too_large(self.read, self.max));
        }
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn too_large(len: u64, max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{len} bytes or more, larger than the {max} bytes allowed"),
    )
}

/// Who besides the service can reach a file holding a secret (the decision log's HMAC key,
/// the TLS private key), judged the way OpenSSH judges private keys, with room for the usual
/// service layout: a key owned by root and readable by the service's own group
/// (`root:editgate`, mode 0640) is private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretAccess {
    /// Only the service (its user or one of its groups) and root can read or replace it.
    Private,
    /// A group this process does not run in can read it (a warning: its members can read
    /// the secret).
    Group {
        /// The permission bits.
        mode: u32,
        /// The file's group.
        gid: u32,
    },
    /// Every user on the host can read it (an error: the secret is public).
    World {
        /// The permission bits.
        mode: u32,
    },
    /// A POSIX ACL entry lets a user or group other than the service's read it (an error).
    Acl {
        /// The entry, as `getfacl` writes it (`user:65534:r--`).
        entry: String,
    },
    /// Another user than the service's (or root) owns it, and can read and change it (an
    /// error).
    Owner {
        /// The owner.
        uid: u32,
    },
    /// A directory on the way to it (the path as given, or where its links lead) can be
    /// written by others and has no sticky bit: they can put another file in its place (an
    /// error).
    Directory {
        /// The directory.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl SecretAccess {
    /// What is wrong, in words, for the secret `what` at `path`, whose exposure lets a reader
    /// do `risk`: `None` when private; `Some((true, ..))` when the file must be refused.
    pub fn problem(&self, what: &str, path: &Path, risk: &str) -> Option<(bool, String)> {
        let path = path.display();
        let refuse = |why: String| Some((true, why));
        match self {
            Self::Private => None,
            Self::World { mode } => refuse(format!(
                "{what} `{path}` can be read by every user on this host (mode {mode:04o}), who could {risk}; make it readable by editgate only: `chmod 600 {path}`, or `chmod 640` with the service's group"
            )),
            Self::Group { mode, gid } => Some((
                false,
                format!(
                    "{what} `{path}` can be read by group {gid}, which this process does not run in (mode {mode:04o}); its members could {risk}: `chmod 600 {path}`, or give it the service's own group (`chgrp editgate`)"
                ),
            )),
            Self::Acl { entry } => refuse(format!(
                "{what} `{path}` can be read through its ACL entry `{entry}` by someone other than the service, who could {risk}; remove it: `setfacl -b {path}`"
            )),
            Self::Owner { uid } => refuse(format!(
                "{what} `{path}` is owned by user {uid}, not by the service or root; that user could {risk}, or replace the secret: `chown root {path}`"
            )),
            Self::Directory { path: dir, mode } => refuse(format!(
                "{what} `{path}` is reached through `{}`, which others can write to (mode {mode:04o}, no sticky bit): they could put a file of their own in its place; keep the secret in a directory only root and the service can write to",
                dir.display()
            )),
        }
    }
}

/// How exposed the secret file at `path` is: who can read it (its mode and its ACL), who owns
/// it, and who can replace it (every directory on the way to it, as written and with its
/// symbolic links resolved). Not a regular file is an error, as for [`read_regular`].
pub fn secret_access(path: &Path) -> std::io::Result<SecretAccess> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let me = Process::current();
    let mode = meta.mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Ok(SecretAccess::World { mode });
    }
    if meta.uid() != me.uid && meta.uid() != 0 {
        return Ok(SecretAccess::Owner { uid: meta.uid() });
    }
    if let Some(entry) = foreign_acl_reader(path, &me)? {
        return Ok(SecretAccess::Acl { entry });
    }
    if let Some((dir, mode)) = writable_directory(path, &me)? {
        return Ok(SecretAccess::Directory { path: dir, mode });
    }
    Ok(if mode & 0o070 != 0 && !me.groups.contains(&meta.gid()) {
        SecretAccess::Group { mode, gid: meta.gid() }
    } else {
        SecretAccess::Private
    })
}

/// This process's effective user and groups: who "the service" is.
struct Process {
    uid: u32,
    groups: Vec<u32>,
}

impl Process {
    fn current() -> Self {
        let mut groups: Vec<u32> = rustix::process::getgroups()
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        groups.push(rustix::process::getegid().as_raw());
        Self {
            uid: rustix::process::geteuid().as_raw(),
            groups,
        }
    }
}

/// The first POSIX ACL entry (`system.posix_acl_access`) that lets a user or group other than
/// this process's read the file, as `getfacl` writes it; `None` when there is none, or the
/// file system has no ACLs.
///
/// Parsed here because no maintained crate reads the attribute without linking libacl: it is
/// a version word (2) then 8-byte entries (tag, permissions, id), little-endian, as the
/// kernel's `posix_acl_xattr.h` defines them.
fn foreign_acl_reader(path: &Path, me: &Process) -> std::io::Result<Option<String>> {
    const USER: u16 = 0x02;
    const GROUP: u16 = 0x08;
    const MASK: u16 = 0x10;
    const READ: u16 = 0x04;
    let mut buf = vec![0u8; 4 + 8 * 64];
    let len = match rustix::fs::getxattr(path, "system.posix_acl_access", &mut buf[..]) {
        Ok(n) => n,
        Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::NOTSUP => return Ok(None),
        // More than 64 entries: too many to be a service's key; treated as readable by others.
        Err(e) if e == rustix::io::Errno::RANGE => return Ok(Some("(more than 64 ACL entries)".to_owned())),
        Err(e) => return Err(e.into()),
    };
    let entries: Vec<(u16, u16, u32)> = buf[4.min(len)..len]
        .chunks_exact(8)
        .map(|e| {
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            )
        })
        .collect();
    // Named entries grant no more than the mask.
    let mask = entries.iter().find(|e| e.0 == MASK).map_or(0x7, |e| e.1);
    Ok(entries.iter().find_map(|&(tag, perm, id)| {
        let foreign = match tag {
            USER => id != me.uid,
            GROUP => !me.groups.contains(&id),
            _ => false,
        };
        (foreign && perm & mask & READ != 0).then(|| {
            let kind = if tag == USER { "user" } else { "group" };
            let rwx: String = [(4, 'r'), (2, 'w'), (1, 'x')]
                .iter()
                .map(|&(bit, c)| if perm & bit != 0 { c } else { '-' })
                .collect();
            format!("{kind}:{id}:{rwx}")
        })
    }))
}

/// The first directory on the way to `path` (as written, and with its links resolved) that
/// others can write to without a sticky bit: every user, or a group this process does not
/// run in.
fn writable_directory(path: &Path, me: &Process) -> std::io::Result<Option<(std::path::PathBuf, u32)>> {
    use std::os::unix::fs::MetadataExt as _;
    let written = std::path::absolute(path)?;
    let resolved = std::fs::canonicalize(path)?;
    for dir in written.ancestors().skip(1).chain(resolved.ancestors().skip(1)) {
        let meta = std::fs::metadata(dir)?;
        let mode = meta.mode() & 0o7777;
        let others = mode & 0o002 != 0 || (mode & 0o020 != 0 && !me.groups.contains(&meta.gid()));
        if others && mode & 0o1000 == 0 {
            return Ok(Some((dir.to_owned(), mode)));
        }
    }
    Ok(None)
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
        if std::os::unix::fs::chown(f.path(), None, Some(foreign)).is_err()
            || Process::current().groups.contains(&foreign)
        {
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
        assert!(!Process::current().groups.is_empty());
    }

    #[test]
    fn a_directory_is_not_a_key() {
        let d = tempfile::tempdir().unwrap();
        assert!(secret_access(d.path()).is_err());
    }

    #[test]
    fn a_key_an_acl_lets_another_user_read_is_refused() {
        let f = key_with_mode(0o600);
        if !editgate_testkit::dirs::grant_acl(f.path(), 65_534, None, 4) {
            eprintln!("skipped: this file system has no ACLs");
            return;
        }
        let access = secret_access(f.path()).unwrap();
        assert_eq!(
            access,
            SecretAccess::Acl {
                entry: "user:65534:r--".into()
            }
        );
        let (refused, why) = access.problem("the key", f.path(), "read it").unwrap();
        assert!(refused && why.contains("setfacl -b"), "{why}");
        // A mask without read makes the named entries grant nothing.
        let f = key_with_mode(0o600);
        assert!(editgate_testkit::dirs::grant_acl(f.path(), 65_534, Some(65_534), 0));
        assert_eq!(secret_access(f.path()).unwrap(), SecretAccess::Private);
    }

    #[test]
    fn a_key_owned_by_another_user_is_refused() {
        let f = key_with_mode(0o600);
        if std::os::unix::fs::chown(f.path(), Some(65_534), None).is_err() {
            eprintln!("skipped: only root can give a file to another user");
            return;
        }
        assert_eq!(secret_access(f.path()).unwrap(), SecretAccess::Owner { uid: 65_534 });
    }

    #[test]
    fn a_key_in_or_through_a_directory_others_can_write_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let open = base.path().join("open");
        let private = base.path().join("private");
        std::fs::create_dir(&open).unwrap();
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let write_key = |p: &Path| {
            std::fs::write(p, "0123456789abcdef0123").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        let in_open = open.join("key");
        write_key(&in_open);
        let refused = SecretAccess::Directory {
            path: open.clone(),
            mode: 0o777,
        };
        assert_eq!(secret_access(&in_open).unwrap(), refused);
        // Reached through a link in it, or leading into it.
        let in_private = private.join("key");
        write_key(&in_private);
        assert_eq!(secret_access(&in_private).unwrap(), SecretAccess::Private);
        std::os::unix::fs::symlink(&in_private, open.join("link")).unwrap();
        assert_eq!(secret_access(&open.join("link")).unwrap(), refused);
        std::os::unix::fs::symlink(&in_open, private.join("link")).unwrap();
        assert_eq!(secret_access(&private.join("link")).unwrap(), refused);
        let (is_refused, why) = refused.problem("the key", &in_open, "read it").unwrap();
        assert!(is_refused && why.contains("no sticky bit"), "{why}");
        // With the sticky bit (as /tmp), others cannot replace a file they do not own.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(secret_access(&in_open).unwrap(), SecretAccess::Private);
    }
}
