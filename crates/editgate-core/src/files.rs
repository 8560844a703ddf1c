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
