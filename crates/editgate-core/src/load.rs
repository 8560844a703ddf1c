//! Reads a policy directory and its data files from disk and builds a [`Snapshot`].
//!
//! This is the one place the core touches the file system (plain `std::fs`, no async): the CLI,
//! the server's reload task, the tests and the benches all load through here.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::engine::{AgeFrom, DataTime, Snapshot, SourceContent, SourceData};
use crate::files::{MAX_KEY_BYTES, MAX_POLICY_FILE_BYTES, read_regular};
use crate::pace::Pacer;
use crate::policy::{self, Location, PolicyError, PolicyErrors, PolicyFile, SourceDef, Warning};
use crate::sources::maxmind::MaxmindDb;
use crate::sources::spur::{self, SpurTable};
use crate::sources::{ParseError, SourceKind, iplist, tor};
use ipnet::IpNet;

/// Why a policy directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory itself cannot be read: the environment's fault, not the policy's.
    #[error("cannot read policy directory `{}`: {source}", path.display())]
    Io {
        /// The directory (or its `wikis/` subdirectory).
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The directory's content is invalid: every error, with its file, line and column.
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
/// bytes, so that hashed addresses cannot be brute-forced from a guessable key. The key makes
/// the hashed addresses reversible for whoever reads it (the IPv4 space is small enough to
/// hash in minutes), so a key file every user can read is refused, and one a foreign group
/// can read is a warning ([`crate::files::secret_access`]).
fn decision_log_config(
    dir: &Path,
    s: &crate::policy::DecisionLogSettings,
) -> Result<(DecisionLogConfig, Option<Warning>), PolicyError> {
    let key_path = dir.join(&s.key_file);
    let cannot_read = |e: std::io::Error| {
        PolicyError::new(
            s.location.clone(),
            format!("decision_log: cannot read key file `{}`: {e}", s.key_file),
        )
    };
    let exposure = crate::files::secret_access(&key_path).map_err(cannot_read)?.problem(
        "decision_log: the key file",
        &key_path,
        "turn the decision log's hashed addresses back into addresses",
    );
    let warning = match exposure {
        Some((true, why)) => return Err(PolicyError::new(s.location.clone(), why)),
        Some((false, why)) => Some(Warning::new(
            crate::policy::Lint::SecretFileMode,
            s.location.clone(),
            why,
        )),
        None => None,
    };
    let key = read_regular(&key_path, MAX_KEY_BYTES).map_err(cannot_read)?;
    let key = key.trim_ascii().to_vec();
    if key.len() < 16 {
        return Err(PolicyError::new(
            s.location.clone(),
            format!(
                "decision_log: key file `{}` holds {} bytes; use at least 16 random bytes (e.g. `head -c 32 /dev/urandom | base64`)",
                s.key_file,
                key.len()
            ),
        ));
    }
    let config = DecisionLogConfig {
        path: dir.join(&s.path),
        key,
        sample_rate: s.sample_rate,
        max_bytes: s.max_bytes,
    };
    Ok((config, warning))
}

/// Reads `global.toml` and `wikis/<wiki id>.toml` (sorted by name). Any other entry of
/// `wikis/` is an error (`dewiki.TOML`, a name that is not UTF-8, a directory), so a wiki's
/// rules are never skipped because of how its file is named; hidden files and names ending
/// in `~` (editors' swap and backup files) are left alone.
pub fn read_policy_files(dir: &Path) -> Result<Vec<PolicyFile>, LoadError> {
    let meta = std::fs::metadata(dir).map_err(|e| io_error(dir, e))?;
    if !meta.is_dir() {
        return Err(io_error(dir, std::io::ErrorKind::NotADirectory.into()));
    }
    let mut rels = vec!["global.toml".to_owned()];
    let mut errors = Vec::new();
    match std::fs::read_dir(dir.join("wikis")) {
        Ok(entries) => {
            let mut wikis = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&dir.join("wikis"), e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    errors.push(PolicyError::new(
                        Location::file(&format!("wikis/{}", name.to_string_lossy())),
                        "the file name is not valid UTF-8; name wiki files `<wiki id>.toml`",
                    ));
                    continue;
                };
                if name.starts_with('.') || name.ends_with('~') {
                    continue;
                }
                if !name.ends_with(".toml") {
                    errors.push(PolicyError::new(
                        Location::file(&format!("wikis/{name}")),
                        "not a wiki file: name wiki files `<wiki id>.toml` (lower-case `.toml`); move anything else out of `wikis/`",
                    ));
                    continue;
                }
                wikis.push(format!("wikis/{name}"));
            }
            wikis.sort();
            rels.extend(wikis);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&dir.join("wikis"), e)),
    }
    let mut files = Vec::new();
    for rel in rels {
        match read_regular(&dir.join(&rel), MAX_POLICY_FILE_BYTES) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.push(PolicyFile { path: rel, text }),
                Err(e) => {
                    let at = match crate::sources::utf8(e.as_bytes()) {
                        Err(p) => Location {
                            file: rel.clone(),
                            line: p.line,
                            column: p.column,
                        },
                        Ok(_) => Location::file(&rel),
                    };
                    errors.push(PolicyError::new(at, "not valid UTF-8 text"));
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel == "global.toml" => {}
            Err(e) => errors.push(PolicyError::new(Location::file(&rel), format!("cannot read: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(LoadError::Invalid(PolicyErrors(errors)))
    }
}

fn io_error(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parses a list source's bytes (`tor-exits`, `ip-list`) and applies its sanity bounds
/// (`min_entries`, or no empty list unless `min_entries = 0`).
pub fn parse_list_checked(def: &SourceDef, bytes: &[u8]) -> Result<Vec<IpNet>, ParseError> {
    parse_list_paced(def, bytes, &mut Pacer::none())
}

fn parse_list_paced(def: &SourceDef, bytes: &[u8], pacer: &mut Pacer<'_>) -> Result<Vec<IpNet>, ParseError> {
    let nets = match def.kind {
        SourceKind::TorExits => tor::parse_bytes(bytes)?.1.into_iter().map(Into::into).collect(),
        SourceKind::IpList => iplist::parse_bytes_paced(bytes, def.mask_host_bits, pacer)?,
        kind => return Err(ParseError::at(0, 0, format!("a `{kind}` source is not a list"))),
    };
    enough_entries(def, nets.len())?;
    Ok(nets)
}

/// A list's or a feed's sanity bound: `min_entries`, or no empty copy unless
/// `min_entries = 0`.
fn enough_entries(def: &SourceDef, entries: usize) -> Result<(), ParseError> {
    let min = def.min_entries();
    if (entries as u64) < min {
        let why = match def.min_entries {
            Some(_) => format!("fewer than `min_entries = {min}`"),
            None => "an empty copy; set `min_entries = 0` on the source if it may be empty".to_owned(),
        };
        return Err(ParseError::at(
            0,
            0,
            format!("{entries} entries, {why}: rejected as suspicious"),
        ));
    }
    Ok(())
}

/// Why a feed could not be read.
#[derive(Debug)]
pub enum FeedError {
    /// The file cannot be opened or read (missing, too large, not a regular file).
    Io(std::io::Error),
    /// Its content is not a valid feed, or too small.
    Parse(ParseError),
}

/// Reads a `spur-feed` source's file as a stream (never whole in memory), within its
/// `max_bytes`, with its sanity bound; the table and the SHA-256 of the file. The loader, the
/// fetch (on the downloaded copy) and `accept-shrink` all read a feed this way.
pub fn read_feed(def: &SourceDef, path: &Path, pacer: &mut Pacer<'_>) -> Result<(SpurTable, String), FeedError> {
    let (file, _) = crate::files::open_regular(path, def.max_bytes).map_err(FeedError::Io)?;
    let mut bounded = crate::files::Bounded::new(file, def.max_bytes);
    let table = spur::read(&mut bounded, pacer).map_err(FeedError::Parse)?;
    // The rest of the file (after a gzip stream's end) counts in its hash too.
    std::io::copy(&mut bounded, &mut std::io::sink()).map_err(FeedError::Io)?;
    enough_entries(def, table.len()).map_err(FeedError::Parse)?;
    Ok((table, bounded.sha256_hex()))
}

/// Parses one source's bytes according to its kind, with the sanity bounds of lists. The
/// loader and the fetchers all call this, so a fetch is accepted exactly when a reload would
/// be.
pub fn parse_checked(def: &SourceDef, bytes: Vec<u8>) -> Result<SourceContent, ParseError> {
    if def.kind.is_network_list() {
        return parse_list_checked(def, &bytes).map(SourceContent::Networks);
    }
    MaxmindDb::open(bytes, def.kind).map(SourceContent::Maxmind)
}

/// When a source's data was current, best first: the data's own timestamps (Tor lists,
/// MaxMind's `build_epoch`), else for a `url` source when its origin last sent or confirmed
/// it, else the file's modification time.
fn data_time(def: &SourceDef, path: &Path, bytes: &[u8]) -> Option<DataTime> {
    let own = match def.kind {
        SourceKind::TorExits => tor::data_time(bytes),
        SourceKind::MaxmindAnonymous | SourceKind::MaxmindAsn | SourceKind::MaxmindCountry => {
            MaxmindDb::build_time(bytes).map(|t| (t, "MaxMind build_epoch"))
        }
        SourceKind::IpList | SourceKind::SpurFeed => None,
    };
    if let Some((at, field)) = own {
        return Some(DataTime {
            at,
            from: AgeFrom::Data(field),
        });
    }
    let fetched = def
        .remote
        .as_ref()
        .and_then(|_| crate::sidecar::read_meta(path))
        .and_then(|m| m.confirmed_at);
    if let Some(at) = fetched {
        return Some(DataTime {
            at,
            from: AgeFrom::Fetched,
        });
    }
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(DataTime {
        at: Timestamp::try_from(modified).ok()?,
        from: AgeFrom::FileModified,
    })
}

/// How to load a policy directory.
pub struct LoadOptions<'a> {
    /// Decides which rules count as expired in the warnings.
    pub now: Timestamp,
    /// The serving snapshot, on a reload: lists that shrank past their `max_shrink` against it
    /// are refused, and so is a `url` source without a copy.
    pub previous: Option<&'a Snapshot>,
    /// Where the build may give way (a reload under load; see [`crate::pace`]).
    pub pacer: Pacer<'a>,
}

/// Loads and compiles a policy directory for a first start (or a one-off command). `now`
/// decides which rules count as expired in the warnings. Every error found is returned, each
/// with its file and position.
pub fn load_dir(dir: &Path, now: Timestamp) -> Result<Loaded, LoadError> {
    load(
        dir,
        LoadOptions {
            now,
            previous: None,
            pacer: Pacer::none(),
        },
    )
}

/// Loads a policy directory as `options` say ([`load_dir`] is the usual case). With
/// `previous`, the serving snapshot, a list source that lost more than its `max_shrink` of the
/// entries it serves (or all of them) is an error, unless that copy was confirmed with
/// `editgate accept-shrink`: a truncated download or an emptied file never replaces good
/// data.
pub fn load(dir: &Path, options: LoadOptions<'_>) -> Result<Loaded, LoadError> {
    let LoadOptions {
        now,
        previous,
        mut pacer,
    } = options;
    let files = read_policy_files(dir)?;
    let (policy, warnings) = policy::check(&files, now).map_err(LoadError::Invalid)?;
    let mut hasher = Sha256::new();
    let mut inputs: Vec<PathBuf> = files.iter().map(|f| dir.join(&f.path)).collect();
    for f in &files {
        hash_input(&mut hasher, &mut pacer, &f.path, f.text.as_bytes());
    }
    let mut data = Vec::with_capacity(policy.sources.len());
    let mut errors = Vec::new();
    for def in &policy.sources {
        let path = dir.join(&def.path);
        inputs.push(path.clone());
        let previous_entries = previous.and_then(|p| crate::shrink::baseline(p, def));
        // A feed is read as a stream (its table and hash); other sources' files whole.
        let read = if def.kind == SourceKind::SpurFeed {
            read_feed(def, &path, &mut pacer).map(|(table, sha)| Copy::Feed(table, sha))
        } else {
            read_regular(&path, def.max_bytes)
                .map(Copy::Bytes)
                .map_err(FeedError::Io)
        };
        let parsed = match read {
            Err(FeedError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && def.remote.is_some() => {
                match not_fetched(def, previous.is_some(), previous_entries) {
                    Some(e) => errors.push(e),
                    None => {
                        hash_input(&mut hasher, &mut pacer, &def.path, NOT_FETCHED);
                        data.push(SourceData {
                            content: SourceContent::Networks(Vec::new()),
                            time: None,
                        });
                    }
                }
                continue;
            }
            Err(FeedError::Io(e)) => {
                errors.push(PolicyError::new(
                    def.location.clone(),
                    format!("source `{}`: cannot read `{}`: {e}", def.name, def.path),
                ));
                continue;
            }
            Err(FeedError::Parse(e)) => Err(e),
            Ok(Copy::Feed(table, sha)) => {
                hash_input(&mut hasher, &mut pacer, &def.path, sha.as_bytes());
                let time = data_time(def, &path, &[]);
                check_shrink(def, previous_entries, table.len(), || {
                    crate::shrink::accepted_sha(&path, &sha)
                })
                .map(|()| (SourceContent::Feed(table), time))
            }
            Ok(Copy::Bytes(bytes)) => {
                hash_input(&mut hasher, &mut pacer, &def.path, &bytes);
                let time = data_time(def, &path, &bytes);
                // Lists are parsed from a borrow: the bytes are needed again to match a
                // confirmation.
                if def.kind.is_network_list() {
                    parse_list_paced(def, &bytes, &mut pacer).and_then(|nets| {
                        check_shrink(def, previous_entries, nets.len(), || {
                            crate::shrink::accepted(&path, &bytes)
                        })
                        .map(|()| (SourceContent::Networks(nets), time))
                    })
                } else {
                    parse_checked(def, bytes).map(|content| (content, time))
                }
            }
        };
        match parsed {
            Ok((content, time)) => data.push(SourceData { content, time }),
            Err(e) => errors.push(source_error(def, e)),
        }
    }
    let mut warnings = warnings;
    let decision_log = match &policy.settings.decision_log {
        Some(s) => match decision_log_config(dir, s).inspect(|_| inputs.push(dir.join(&s.key_file))) {
            Ok((c, warning)) => {
                warnings.extend(warning);
                Some(c)
            }
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
    warnings.extend(crate::policy::lint::with_data(&policy, |name| {
        let i = policy.sources.iter().position(|s| s.name == name)?;
        match &data.get(i)?.content {
            SourceContent::Networks(n) => Some(n.as_slice()),
            SourceContent::Maxmind(_) | SourceContent::Feed(_) => None,
        }
    }));
    let feeds: Vec<&SpurTable> = data
        .iter()
        .filter_map(|d| match &d.content {
            SourceContent::Feed(t) if !t.is_empty() => Some(t),
            _ => None,
        })
        .collect();
    if !feeds.is_empty() {
        warnings.extend(crate::policy::lint::reputation_values(&policy, |field| {
            let mut names: Vec<String> = feeds
                .iter()
                .flat_map(|t| t.profiles.vocabulary(field))
                .map(str::to_owned)
                .collect();
            names.sort();
            names.dedup();
            names
        }));
    }
    policy.apply_allowances(&mut warnings);
    let version = crate::files::hex(&hasher.finalize()[..8]);
    Ok(Loaded {
        snapshot: Snapshot::build_paced(policy, data, version, &mut pacer),
        warnings,
        inputs,
        decision_log,
    })
}

/// What a `url` source never fetched counts as in the policy version.
const NOT_FETCHED: &[u8] = b"\0editgate: not fetched yet";

/// A `url` source without a copy: at a first start it starts empty (`None`), and the server
/// does not answer until its first good fetch writes the file; a reload never swaps in a
/// source without data, so there it is an error (the serving snapshot stays until the copy
/// exists: the server fetches it, then reloads).
/// A source's copy as read from disk.
enum Copy {
    /// A feed's table and the SHA-256 (hex) of its file.
    Feed(SpurTable, String),
    /// Any other source's file.
    Bytes(Vec<u8>),
}

/// Refuses a copy of `entries` entries that lost more than `max_shrink` against the serving
/// copy's `previous`, unless `confirmed` (by `editgate accept-shrink`).
fn check_shrink(
    def: &SourceDef,
    previous: Option<usize>,
    entries: usize,
    confirmed: impl FnOnce() -> bool,
) -> Result<(), ParseError> {
    let Some(previous) = previous.filter(|_| crate::shrink::too_much(def, previous, entries) && !confirmed()) else {
        return Ok(());
    };
    let confirm = format!(
        "confirm this copy with `editgate accept-shrink <policy dir> {}`",
        def.name
    );
    Err(ParseError::at(
        0,
        0,
        crate::shrink::message(def, previous, entries, &confirm),
    ))
}

fn not_fetched(def: &SourceDef, reload: bool, previous_entries: Option<usize>) -> Option<PolicyError> {
    if !reload {
        return None;
    }
    let why = match previous_entries {
        Some(n) => format!(
            "its copy `{}` is gone, while the serving copy has {n} entries",
            def.path
        ),
        None => format!("it has no copy at `{}` yet (never fetched)", def.path),
    };
    Some(PolicyError::new(
        def.location.clone(),
        format!(
            "source `{}`: {why}; the serving snapshot stays until a good copy is saved",
            def.name
        ),
    ))
}

/// An error in a source's data, at its line and column in the data file.
fn source_error(def: &SourceDef, e: ParseError) -> PolicyError {
    PolicyError::new(
        Location {
            file: def.path.clone(),
            line: e.line,
            column: e.column,
        },
        format!("source `{}` ({}): {}", def.name, def.kind, e.message),
    )
}

fn hash_input(h: &mut Sha256, pacer: &mut Pacer<'_>, name: &str, bytes: &[u8]) {
    h.update((name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update((bytes.len() as u64).to_le_bytes());
    // In slices, so that a paced reload can pause between them.
    for chunk in bytes.chunks(64 * 1024) {
        pacer.point();
        h.update(chunk);
    }
}
