//! `editgate fetch DIR`: fetches every `url` source once and saves the last good copies, the
//! same way the server does. Useful to prime a new host before its first start, or from a
//! timer on hosts that run the CLI only.

use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;

use super::{ExitCode, load_or_report};
use crate::fetch::{Fetched, ShrinkGuard, fetch, label};

/// `editgate fetch`
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Policy directory.
    pub dir: PathBuf,
    /// Only this source (repeatable); default every `url` source.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Take a list that shrank past its `max_shrink` (or emptied, with `min_entries = 0`)
    /// compared with the copy on disk, and record the confirmation beside it, so that a
    /// running editgate applies it at its next reload too.
    #[arg(long)]
    pub accept_shrink: bool,
}

/// Runs `fetch`: one line per source; exit 1 when any fetch failed or was rejected.
pub fn run(args: &FetchArgs) -> ExitCode {
    let loaded = match load_or_report(&args.dir, Timestamp::now()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let defs: Vec<_> = loaded
        .snapshot
        .policy
        .sources
        .iter()
        .filter(|s| s.remote.is_some())
        .filter(|s| args.sources.is_empty() || args.sources.contains(&s.name))
        .collect();
    for name in &args.sources {
        if !defs.iter().any(|d| &d.name == name) {
            eprintln!("error: no `url` source named `{name}`");
            return ExitCode::Usage;
        }
    }
    let mut failed = 0;
    for def in &defs {
        // The copy on disk, as loaded, is the one a server serves: a new one is judged against
        // it by the rule the server's fetcher follows.
        let guard = ShrinkGuard {
            serving: editgate_core::shrink::baseline(&loaded.snapshot, def),
            accept: args.accept_shrink,
        };
        let outcome = fetch(&args.dir, def, Timestamp::now(), guard);
        match &outcome {
            Ok(Fetched::Updated { entries, bytes }) => {
                outln!("{}: updated: {entries} entries, {bytes} bytes → {}", def.name, def.path);
            }
            Ok(Fetched::NotModified) => outln!("{}: not modified", def.name),
            Err(why) => {
                failed += 1;
                eprintln!("{}: {}: {why} (the last good copy is kept)", def.name, label(&outcome));
            }
        }
    }
    if defs.is_empty() {
        outln!("{}: no `url` sources", args.dir.display());
    }
    if failed > 0 { ExitCode::Failure } else { ExitCode::Ok }
}
