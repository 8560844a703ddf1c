//! Reads a policy directory and its data files from disk and builds a [`Snapshot`].
//!
//! This is the one place the core touches the file system (plain `std::fs`, no async): the CLI,
//! the server's reload task, the tests and the benches all load through here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::engine::{Snapshot, SourceContent, SourceData};
use crate::policy::{self, Origin, PolicyError, PolicyErrors, PolicyFile, SourceDef, Warning};
use crate::sources::maxmind::MaxmindDb;
use crate::sources::{ParseError, SourceKind, iplist, tor};

/// Why a policy directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory itself cannot be read (exit code 2).
    #[error("cannot read policy directory `{path}`: {message}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// The directory's content is invalid (exit code 1).
    #[error("{0}")]
    Invalid(PolicyErrors),
}

/// A loaded snapshot with its warnings and the files it was built from.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled snapshot.
    pub snapshot: Snapshot,
    /// Lint warnings.
    pub warnings: Vec<Warning>,
    /// Every file read (policy files and source data), for change watching.
    pub inputs: Vec<PathBuf>,
    /// The decision log settings with the key read, when `[settings.decision_log]` is set.
    pub decision_log: Option<DecisionLogConfig>,
}

/// A ready-to-use decision log configuration.
#[derive(Clone, PartialEq)]
pub struct DecisionLogConfig {
    /// The JSON Lines file.
    pub path: PathBuf,
    /// The HMAC-SHA256 key for addresses (never logged, never part of the policy version).
    pub key: Vec<u8>,
    /// Fraction of decisions logged.
    pub sample_rate: f64,
    /// Rotate past this size.
    pub max_bytes: Option<u64>,
}

impl std::fmt::Debug for DecisionLogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLogConfig")
            .field("path", &self.path)
            .field("key", &"<redacted>")
            .field("sample_rate", &self.sample_rate)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Reads the decision log key: the file's bytes, surrounding whitespace trimmed; at least 16
/// bytes, so that hashed addresses cannot be brute-forced from a guessable key.
fn decision_log_config(dir: &Path, s: &crate::policy::DecisionLogSettings) -> Result<DecisionLogConfig, PolicyError> {
    let key_path = dir.join(&s.key_file);
    let key = std::fs::read(&key_path).map_err(|e| {
        PolicyError::new(
            s.origin.clone(),
            format!("decision_log: cannot read key file `{}`: {e}", s.key_file),
        )
    })?;
    let key = key.trim_ascii().to_vec();
    if key.len() < 16 {
        return Err(PolicyError::new(
            s.origin.clone(),
            format!(
                "decision_log: key file `{}` holds {} bytes; use at least 16 random bytes (e.g. `head -c 32 /dev/urandom | base64`)",
                s.key_file,
                key.len()
            ),
        ));
    }
    Ok(DecisionLogConfig {
        path: dir.join(&s.path),
        key,
        sample_rate: s.sample_rate,
        max_bytes: s.max_bytes,
    })
}

/// Reads `global.toml` and `wikis/*.toml` (sorted by name).
pub fn read_policy_files(dir: &Path) -> Result<Vec<PolicyFile>, LoadError> {
    let meta = std::fs::metadata(dir).map_err(|e| io_error(dir, &e))?;
    if !meta.is_dir() {
        return Err(LoadError::Io {
            path: dir.to_owned(),
            message: "not a directory".to_owned(),
        });
    }
    let mut rels = vec!["global.toml".to_owned()];
    match std::fs::read_dir(dir.join("wikis")) {
        Ok(entries) => {
            let mut wikis: Vec<String> = entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".toml"))
                .map(|n| format!("wikis/{n}"))
                .collect();
            wikis.sort();
            rels.extend(wikis);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&dir.join("wikis"), &e)),
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for rel in rels {
        match std::fs::read(dir.join(&rel)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.push(PolicyFile { path: rel, text }),
                Err(_) => errors.push(PolicyError::new(Origin::file(&rel), "not valid UTF-8 text")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel == "global.toml" => {}
            Err(e) => errors.push(PolicyError::new(Origin::file(&rel), format!("cannot read: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(LoadError::Invalid(PolicyErrors(errors)))
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Parses one source file's bytes according to its kind.
pub fn parse_source(kind: SourceKind, bytes: Vec<u8>) -> Result<SourceContent, ParseError> {
    Ok(match kind {
        SourceKind::TorExits => {
            SourceContent::Networks(tor::parse_bytes(&bytes)?.1.into_iter().map(Into::into).collect())
        }
        SourceKind::IpList => SourceContent::Networks(iplist::parse_bytes(&bytes)?),
        SourceKind::MaxmindAnonymous | SourceKind::MaxmindAsn | SourceKind::MaxmindCountry => {
            SourceContent::Maxmind(MaxmindDb::open(bytes, kind)?)
        }
    })
}

/// Parses one source's bytes and applies its sanity bounds (`min_entries`). The loader and the
/// server's fetcher both call this, so a fetch is accepted exactly when a reload would be.
pub fn parse_checked(def: &SourceDef, bytes: Vec<u8>) -> Result<SourceContent, ParseError> {
    let content = parse_source(def.kind, bytes)?;
    if let (SourceContent::Networks(nets), Some(min)) = (&content, def.min_entries)
        && (nets.len() as u64) < min
    {
        return Err(ParseError::at(
            0,
            0,
            format!(
                "{} entries, fewer than `min_entries = {min}`: rejected as suspicious",
                nets.len()
            ),
        ));
    }
    Ok(content)
}

/// Loads and compiles a policy directory. `now` decides which rules count as expired in the
/// warnings. Every error found is returned, each with its file and position.
pub fn load_dir(dir: &Path, now: Timestamp) -> Result<Loaded, LoadError> {
    let files = read_policy_files(dir)?;
    let (policy, warnings) = policy::check(&files, now).map_err(LoadError::Invalid)?;
    let mut hasher = Sha256::new();
    let mut inputs: Vec<PathBuf> = files.iter().map(|f| dir.join(&f.path)).collect();
    for f in &files {
        hash_input(&mut hasher, &f.path, f.text.as_bytes());
    }
    let mut data = Vec::with_capacity(policy.sources.len());
    let mut errors = Vec::new();
    for def in &policy.sources {
        let path = dir.join(&def.path);
        inputs.push(path.clone());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && def.remote.is_some() => {
                // Never fetched yet: the source starts empty (and shows as stale) until the
                // server's first good fetch writes the file.
                hash_input(&mut hasher, &def.path, b"\0editgate: not fetched yet");
                data.push(SourceData {
                    content: SourceContent::Networks(Vec::new()),
                    modified: None,
                });
                continue;
            }
            Err(e) => {
                errors.push(PolicyError::new(
                    def.origin.clone(),
                    format!("source `{}`: cannot read `{}`: {e}", def.name, def.path),
                ));
                continue;
            }
        };
        hash_input(&mut hasher, &def.path, &bytes);
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| Timestamp::try_from(t).ok());
        // A `url` source is as fresh as its origin's last confirmation.
        let confirmed = def
            .remote
            .as_ref()
            .and_then(|_| crate::fetch::read_meta(&path))
            .and_then(|m| m.confirmed_at);
        let modified = modified.max(confirmed);
        match parse_checked(def, bytes) {
            Ok(content) => data.push(SourceData { content, modified }),
            Err(e) => errors.push(PolicyError::new(
                Origin {
                    file: def.path.clone(),
                    line: e.line,
                    column: e.column,
                },
                format!("source `{}` ({}): {}", def.name, def.kind, e.message),
            )),
        }
    }
    let decision_log = match &policy.settings.decision_log {
        Some(s) => match decision_log_config(dir, s).inspect(|_| inputs.push(dir.join(&s.key_file))) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(LoadError::Invalid(PolicyErrors(errors)));
    }
    let mut warnings = warnings;
    warnings.extend(crate::policy::lint::redundant_ip_in(&policy, |name| {
        let i = policy.sources.iter().position(|s| s.name == name)?;
        match &data.get(i)?.content {
            SourceContent::Networks(n) => Some(n.as_slice()),
            SourceContent::Maxmind(_) => None,
        }
    }));
    let digest = hasher.finalize();
    let mut version = String::with_capacity(16);
    for b in &digest[..8] {
        let _ = write!(version, "{b:02x}");
    }
    Ok(Loaded {
        snapshot: Snapshot::build(policy, data, version),
        warnings,
        inputs,
        decision_log,
    })
}

fn hash_input(h: &mut Sha256, name: &str, bytes: &[u8]) {
    h.update((name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update((bytes.len() as u64).to_le_bytes());
    // In slices, so that a paced reload can pause between them (`crate::pace`).
    for chunk in bytes.chunks(64 * 1024) {
        crate::pace::point();
        h.update(chunk);
    }
}
