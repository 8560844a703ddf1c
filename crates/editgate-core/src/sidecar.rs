//! Files beside a source's data file: what its last fetch left (`<path>.fetch.json`: the
//! validators for conditional requests and the time the origin last confirmed the copy), and
//! an operator's confirmation of a large shrink (`<path>.accept-shrink`). The fetcher and the
//! CLI write them; the loader reads them.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files::read_regular;

/// What the last successful fetch of a source left behind, next to its data file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchMeta {
    /// The address the copy came from; validators for another address are not sent.
    pub url: String,
    /// The `ETag` of the copy.
    pub etag: Option<String>,
    /// The `Last-Modified` of the copy.
    pub last_modified: Option<String>,
    /// When the origin last confirmed the copy (fetched, or answered "not modified").
    pub confirmed_at: Option<Timestamp>,
}

/// The sidecar file of a data file.
pub fn meta_path(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".fetch.json");
    data.with_file_name(name)
}

/// Reads a data file's sidecar; a missing or unreadable one counts as none.
pub fn read_meta(data: &Path) -> Option<FetchMeta> {
    let bytes = read_regular(&meta_path(data), 1 << 20).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The sidecar that confirms one copy of a list despite a large shrink: `<data>.accept-shrink`.
pub fn acceptance_path(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".accept-shrink");
    data.with_file_name(name)
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::files::hex(&Sha256::digest(bytes))
}

/// Whether `bytes` is the copy an operator confirmed with `editgate accept-shrink` (or
/// `editgate fetch --accept-shrink`): the sidecar names its SHA-256. Bound to the content, a
/// confirmation never lets a later, different shrink through.
pub fn shrink_accepted(data: &Path, bytes: &[u8]) -> bool {
    let Ok(text) = read_regular(&acceptance_path(data), 4096) else {
        return false;
    };
    let want = format!("sha256:{}", sha256_hex(bytes));
    String::from_utf8_lossy(&text).lines().any(|l| l.trim() == want)
}

/// Records that the copy `bytes` of `data` is confirmed despite its shrink.
pub fn accept_shrink(data: &Path, bytes: &[u8], entries: usize) -> std::io::Result<()> {
    let text = format!(
        "# written by `editgate accept-shrink` at {}: this copy ({entries} entries) is taken even though it\n# shrank past `max_shrink`; a different copy needs a new confirmation\nsha256:{}\n",
        Timestamp::now(),
        sha256_hex(bytes)
    );
    std::fs::write(acceptance_path(data), text)
}
