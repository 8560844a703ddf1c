//! The file beside a source's data file that its last fetch left (`<path>.fetch.json`: the
//! validators for conditional requests and the time the origin last confirmed the copy). The
//! fetcher writes it; the loader reads it. (An operator's confirmation of a large shrink is
//! [`crate::shrink`]'s.)

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

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::files::hex(&Sha256::digest(bytes))
}
