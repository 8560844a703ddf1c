//! Fetching `url` sources, all of it: [`fetch`] makes one conditional HTTP(S) request,
//! validated exactly as a reload would validate the file, then saved atomically as the last
//! good copy; [`schedule`] runs it for a service, each source when it is due; [`book`] keeps
//! what the service knows of it (results, confirmations, sources a waiting policy needs).
//! `editgate fetch` calls [`fetch`] directly, and `editgate accept-shrink` writes a
//! confirmation through [`write_acceptance`].
//!
//! [`fetch`] is blocking (`ureq`) and free of tokio: the server runs it on a blocking thread.
//! The sidecar `<path>.fetch.json` (its format is the core's [`editgate_core::sidecar`], which
//! the loader reads) keeps the validators (`ETag`, `Last-Modified`) for conditional requests
//! and the time the origin last confirmed the copy, so that freshness survives a restart
//! without rewriting the data file.

pub mod book;
mod http;
pub mod schedule;

pub use book::{FetchBook, FetchStatus};

use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use editgate_core::files::{read_regular, sha256_file};
use editgate_core::load::{FeedError, parse_checked, parse_list_checked, read_feed};
use editgate_core::pace::Pacer;
use editgate_core::policy::{Remote, SourceDef};
use editgate_core::shrink;
use editgate_core::sidecar::{FetchMeta, meta_path, read_meta};
use editgate_core::sources::{ParseError, SourceKind};

/// A fetch that left a good copy in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// A new copy was validated and saved.
    Updated {
        /// Entries of a list (0 for a database).
        entries: usize,
        /// Body size.
        bytes: usize,
    },
    /// The origin answered 304, or sent the bytes already saved: the copy is confirmed.
    NotModified,
}

/// Why a fetch saved nothing; the last good copy stays in every case.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source has no `url` (a file source).
    #[error("source `{0}` has no `url`")]
    NoUrl(String),
    /// No answer: DNS, connection, TLS or timeout.
    #[error("{0}")]
    Request(#[source] Box<ureq::Error>),
    /// The origin answered with an error status.
    #[error("HTTP {0}")]
    Status(ureq::http::StatusCode),
    /// The body is larger than the source's `max_bytes`.
    #[error("body larger than `max_bytes = {0}`")]
    TooLarge(u64),
    /// The body arrived but is not a valid list or database (a captive portal page, a
    /// truncated database, fewer than `min_entries`).
    #[error("{}{}", .0.message, if .0.line > 0 { format!(" (line {})", .0.line) } else { String::new() })]
    Invalid(ParseError),
    /// A valid list that lost more than `max_shrink` of the entries serving now.
    #[error("{0}")]
    Shrank(String),
    /// The new copy (or its sidecar) could not be written.
    #[error("cannot save `{}`: {source}", path.display())]
    Save {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The source's `auth_file` cannot give a header value (the value itself is never shown).
    #[error("{0}")]
    Auth(String),
    /// A redirect that cannot be followed.
    #[error("redirect: {0}")]
    Redirect(String),
    /// The fetch task ended without a result (it panicked or was cancelled).
    #[error("the fetch task ended without a result: {0}")]
    Lost(String),
}

impl FetchError {
    /// Whether the origin answered but the answer failed validation (`rejected`), rather than
    /// giving no usable answer at all (`failed`).
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::TooLarge(_) | Self::Invalid(_) | Self::Shrank(_))
    }
}

/// What one fetch did.
pub type FetchOutcome = Result<Fetched, FetchError>;

/// A short label for metrics and logs: `updated`, `not_modified`, `rejected`, `failed`.
pub fn label(outcome: &FetchOutcome) -> &'static str {
    match outcome {
        Ok(Fetched::Updated { .. }) => "updated",
        Ok(Fetched::NotModified) => "not_modified",
        Err(e) if e.is_rejection() => "rejected",
        Err(_) => "failed",
    }
}

/// What a new copy of a list is compared with before it replaces the last good one.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShrinkGuard {
    /// Entries of the copy that serves now (`None`: none, or not a list).
    pub serving: Option<usize>,
    /// Take a copy that shrank past `max_shrink` anyway, and record the confirmation beside
    /// it so that a running server's reload takes it too (`editgate fetch --accept-shrink`).
    pub accept: bool,
}

impl ShrinkGuard {
    /// Whether `entries` is a shrink past `max_shrink` that is taken (`accept`); an error
    /// when it is not.
    fn check(self, def: &SourceDef, entries: usize) -> Result<bool, FetchError> {
        let shrank = shrink::too_much(def, self.serving, entries);
        if shrank && !self.accept {
            let confirm = format!(
                "take it with `editgate fetch <policy dir> --source {} --accept-shrink`",
                def.name
            );
            return Err(FetchError::Shrank(shrink::message(
                def,
                self.serving.unwrap_or_default(),
                entries,
                &confirm,
            )));
        }
        Ok(shrank)
    }
}

/// Fetches `def`'s `url` once and, when the answer is new and valid, replaces the copy at
/// `dir/def.path` atomically (write a temporary file, fsync, rename). A list that lost more
/// than `max_shrink` of the `guard.serving` entries (or all of them) is rejected unless
/// `guard.accept`. `now` stamps the confirmation. Never leaves a partial file in place; never
/// panics on a bad answer.
pub fn fetch(dir: &Path, def: &SourceDef, now: Timestamp, guard: ShrinkGuard) -> FetchOutcome {
    let Some(remote) = &def.remote else {
        return Err(FetchError::NoUrl(def.name.clone()));
    };
    let path = dir.join(&def.path);
    let meta = read_meta(&path).filter(|m| m.url == remote.url && path.exists());
    if def.kind == SourceKind::SpurFeed {
        return fetch_feed(dir, def, remote, &path, meta, now, guard);
    }
    let Some(body) = http::request(dir, remote, def.max_bytes, meta.as_ref())? else {
        return confirm(&path, meta.unwrap_or_default(), remote, now);
    };
    if meta.is_some() && read_regular(&path, def.max_bytes).is_ok_and(|old| old == body.bytes) {
        let meta = FetchMeta {
            etag: body.validators.etag,
            last_modified: body.validators.last_modified,
            ..meta.unwrap_or_default()
        };
        return confirm(&path, meta, remote, now);
    }
    let len = body.bytes.len();
    let parsed = if def.kind.is_network_list() {
        parse_list_checked(def, &body.bytes).map(|n| n.len())
    } else {
        parse_checked(def, body.bytes.clone()).map(|_| 0)
    };
    let entries = parsed.map_err(FetchError::Invalid)?;
    let shrank = guard.check(def, entries)?;
    let meta = FetchMeta {
        url: remote.url.clone(),
        etag: body.validators.etag,
        last_modified: body.validators.last_modified,
        confirmed_at: Some(now),
    };
    if shrank {
        write_acceptance(&path, &body.bytes, entries, now).map_err(|e| save_error(&path, e))?;
    }
    write_atomically(&path, &body.bytes).map_err(|e| save_error(&path, e))?;
    // The data is in place; a lost sidecar only costs one unconditional fetch later.
    let _ = save_meta(&path, &meta);
    Ok(Fetched::Updated { entries, bytes: len })
}

/// [`fetch`] for a Spur feed, which can be gigabytes: the body goes to a temporary file
/// beside the copy as it arrives, is validated from there as a stream (as a reload reads it),
/// and is renamed over the copy only when good. Nothing holds the whole body in memory.
fn fetch_feed(
    dir: &Path,
    def: &SourceDef,
    remote: &Remote,
    path: &Path,
    meta: Option<FetchMeta>,
    now: Timestamp,
    guard: ShrinkGuard,
) -> FetchOutcome {
    let tmp = temporary(path);
    let result = (|| {
        let Some(validators) = http::request_to_file(dir, remote, def.max_bytes, meta.as_ref(), &tmp)? else {
            return confirm(path, meta.clone().unwrap_or_default(), remote, now);
        };
        let new_meta = FetchMeta {
            url: remote.url.clone(),
            etag: validators.etag,
            last_modified: validators.last_modified,
            confirmed_at: Some(now),
        };
        let (entries, sha) = match read_feed(def, &tmp, &mut Pacer::none()) {
            Ok((table, sha)) => (table.len(), sha),
            Err(FeedError::Parse(e)) => return Err(FetchError::Invalid(e)),
            Err(FeedError::Io(e)) => return Err(save_error(&tmp, e)),
        };
        if meta.is_some() && sha256_file(path, def.max_bytes).is_ok_and(|old| old == sha) {
            let _ = std::fs::remove_file(&tmp);
            return confirm(path, new_meta, remote, now);
        }
        let shrank = guard.check(def, entries)?;
        if shrank {
            write_atomically(
                &shrink::acceptance_path(path),
                shrink::acceptance_of_sha(&sha, entries, now).as_bytes(),
            )
            .map_err(|e| save_error(path, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| save_error(path, e))?;
        let _ = save_meta(path, &new_meta);
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
        Ok(Fetched::Updated { entries, bytes })
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// The temporary file a new copy of `path` is written to before it is renamed into place.
fn temporary(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn save_error(path: &Path, source: std::io::Error) -> FetchError {
    FetchError::Save {
        path: path.to_owned(),
        source,
    }
}

fn confirm(path: &Path, meta: FetchMeta, remote: &Remote, now: Timestamp) -> FetchOutcome {
    let meta = FetchMeta {
        url: remote.url.clone(),
        confirmed_at: Some(now),
        ..meta
    };
    save_meta(path, &meta).map_err(|e| save_error(&meta_path(path), e))?;
    Ok(Fetched::NotModified)
}

fn save_meta(data: &Path, meta: &FetchMeta) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    write_atomically(&meta_path(data), &json)
}

/// Records, beside `path`, that its copy `bytes` (`entries` entries) is taken despite a
/// shrink past `max_shrink` (see [`editgate_core::shrink`]), as of `now`; atomically, as every
/// file editgate writes.
pub fn write_acceptance(path: &Path, bytes: &[u8], entries: usize, now: Timestamp) -> std::io::Result<()> {
    write_atomically(
        &shrink::acceptance_path(path),
        shrink::acceptance(bytes, entries, now).as_bytes(),
    )
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it into place, so
/// that readers (a reload, a restart) see the old file or the new one, never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temporary(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
