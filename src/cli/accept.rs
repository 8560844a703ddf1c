//! `editgate accept-shrink DIR SOURCE...`: confirms that the current copy of a list or a
//! Spur feed may replace a larger one. A reload (or fetch) rejects a list that lost more than `max_shrink`
//! of its entries, or all of them; this records the SHA-256 of the copy on disk beside it
//! (`<path>.accept-shrink`), and a running editgate takes exactly that copy at its next
//! reload. A different copy needs a new confirmation.

use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;

use super::ExitCode;
use crate::fetch::{write_acceptance, write_atomically};
use editgate_core::files::read_regular;
use editgate_core::load::{FeedError, parse_list_checked, read_feed, read_policy_files};
use editgate_core::pace::Pacer;
use editgate_core::sidecar::sha256_hex;
use editgate_core::sources::SourceKind;

/// `editgate accept-shrink`
#[derive(Debug, Args)]
pub struct AcceptShrinkArgs {
    /// Policy directory.
    pub dir: PathBuf,
    /// The list sources whose current copy to confirm.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
}

/// Runs `accept-shrink`: one line per source; exit 1 when a copy does not parse, 2 for an
/// unknown source or an unreadable file.
pub fn run(args: &AcceptShrinkArgs) -> ExitCode {
    let policy = match read_policy_files(&args.dir)
        .map_err(|e| e.to_string())
        .and_then(|files| editgate_core::policy::check(&files, Timestamp::now()).map_err(|e| e.to_string()))
    {
        Ok((policy, _)) => policy,
        Err(e) => {
            eprintln!("{e}\nerror: cannot read the sources of `{}`", args.dir.display());
            return ExitCode::Failure;
        }
    };
    let mut code = ExitCode::Ok;
    for name in &args.sources {
        let Some(def) = policy.sources.iter().find(|s| &s.name == name) else {
            eprintln!("error: no source named `{name}`");
            return ExitCode::Usage;
        };
        if !def.kind.has_entries() {
            eprintln!(
                "error: source `{name}` is a `{}` database, not a list or a feed: it never shrinks",
                def.kind
            );
            return ExitCode::Usage;
        }
        let path = args.dir.join(&def.path);
        if def.kind == SourceKind::SpurFeed {
            // A feed is read as a stream and confirmed by its hash, never held whole.
            match read_feed(def, &path, &mut Pacer::none()) {
                Ok((table, sha)) => {
                    let text = editgate_core::shrink::acceptance_of_sha(&sha, table.len(), Timestamp::now());
                    if let Err(e) = write_atomically(&editgate_core::shrink::acceptance_path(&path), text.as_bytes()) {
                        eprintln!("error: source `{name}`: cannot write the confirmation: {e}");
                        return ExitCode::Usage;
                    }
                    outln!(
                        "{name}: confirmed `{}` ({} entries, sha256 {}…); a running editgate takes it at its next reload",
                        def.path,
                        table.len(),
                        &sha[..12]
                    );
                }
                Err(FeedError::Io(e)) => {
                    eprintln!("error: source `{name}`: cannot read `{}`: {e}", path.display());
                    return ExitCode::Usage;
                }
                Err(FeedError::Parse(e)) => {
                    eprintln!(
                        "{}:{}:{}: error: source `{name}`: {}",
                        def.path, e.line, e.column, e.message
                    );
                    code = ExitCode::Failure;
                }
            }
            continue;
        }
        let bytes = match read_regular(&path, def.max_bytes) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: source `{name}`: cannot read `{}`: {e}", path.display());
                return ExitCode::Usage;
            }
        };
        let entries = match parse_list_checked(def, &bytes) {
            Ok(nets) => nets.len(),
            Err(e) => {
                eprintln!(
                    "{}:{}:{}: error: source `{name}`: {}",
                    def.path, e.line, e.column, e.message
                );
                code = ExitCode::Failure;
                continue;
            }
        };
        if let Err(e) = write_acceptance(&path, &bytes, entries, Timestamp::now()) {
            eprintln!("error: source `{name}`: cannot write the confirmation: {e}");
            return ExitCode::Usage;
        }
        outln!(
            "{name}: confirmed `{}` ({entries} entries, sha256 {}…); a running editgate takes it at its next reload",
            def.path,
            &sha256_hex(&bytes)[..12]
        );
    }
    code
}
