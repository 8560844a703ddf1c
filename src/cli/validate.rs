//! `editgate validate DIR`: errors as `path:line:col: message`, then warnings.

use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;

use super::{ExitCode, load_or_report, plural};

/// `editgate validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Policy directory.
    pub dir: PathBuf,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Runs `validate`.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let loaded = match load_or_report(&args.dir, Timestamp::now()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let snap = &loaded.snapshot;
    let n = loaded.warnings.len();
    println!(
        "{}: valid: {} rule{}, {} source{}, {} wiki file{}, {} warning{}; policy version {}",
        args.dir.display(),
        snap.rules().len(),
        plural(snap.rules().len()),
        snap.sources().len(),
        plural(snap.sources().len()),
        snap.policy.wikis.len(),
        plural(snap.policy.wikis.len()),
        n,
        plural(n),
        snap.version()
    );
    if args.deny_warnings && n > 0 {
        ExitCode::Failure
    } else {
        ExitCode::Ok
    }
}
