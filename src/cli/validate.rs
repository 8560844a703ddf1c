//! `editgate validate DIR`: errors as `path:line:col: message`, then warnings.

use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;

use super::{ExitCode, load_or_report, plural, report_invalid, report_load_error};
use editgate_core::load::read_policy_files;
use editgate_core::policy::Warning;

/// `editgate validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Policy directory.
    pub dir: PathBuf,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
    /// Check the policy files only (TOML, keys, references, lints) without reading any data
    /// file: for a policy kept in version control, away from the lists and databases it
    /// names.
    #[arg(long)]
    pub no_data: bool,
}

/// Runs `validate`.
pub fn run(args: &ValidateArgs) -> ExitCode {
    if args.no_data {
        return files_only(args);
    }
    let loaded = match load_or_report(&args.dir, Timestamp::now()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let snap = &loaded.snapshot;
    for s in snap.sources().iter().filter(|s| s.awaiting_first_fetch()) {
        eprintln!(
            "note: source `{}` has no copy yet: `editgate serve` answers UNAVAILABLE until its first good fetch; `editgate fetch {}` fetches it now",
            s.name,
            args.dir.display()
        );
    }
    outln!(
        "{}: valid: {} rule{}, {} source{}, {} wiki file{}, {}; policy version {}",
        args.dir.display(),
        snap.rules().len(),
        plural(snap.rules().len()),
        snap.sources().len(),
        plural(snap.sources().len()),
        snap.policy.wikis.len(),
        plural(snap.policy.wikis.len()),
        count(&loaded.warnings),
        snap.version()
    );
    verdict(args, &loaded.warnings)
}

/// `validate --no-data`: the policy files through the checker and the lints, no data read.
fn files_only(args: &ValidateArgs) -> ExitCode {
    let files = match read_policy_files(&args.dir) {
        Ok(f) => f,
        Err(e) => return report_load_error(&args.dir, &e),
    };
    let (policy, warnings) = match editgate_core::policy::check(&files, Timestamp::now()) {
        Ok(p) => p,
        Err(errors) => return report_invalid(&args.dir, &errors),
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    outln!(
        "{}: policy files valid (data not read): {} rule{}, {} source{}, {} wiki file{}, {}",
        args.dir.display(),
        policy.rules.len(),
        plural(policy.rules.len()),
        policy.sources.len(),
        plural(policy.sources.len()),
        policy.wikis.len(),
        plural(policy.wikis.len()),
        count(&warnings),
    );
    verdict(args, &warnings)
}

/// `3 warnings (1 allowed)`.
fn count(warnings: &[Warning]) -> String {
    let n = warnings.len();
    let allowed = warnings.iter().filter(|w| w.allowed).count();
    let note = if allowed > 0 {
        format!(" ({allowed} allowed)")
    } else {
        String::new()
    };
    format!("{n} warning{}{note}", plural(n))
}

/// With `--deny-warnings`, failure when a warning the policy does not allow is left.
fn verdict(args: &ValidateArgs, warnings: &[Warning]) -> ExitCode {
    if args.deny_warnings && warnings.iter().any(|w| w.denied(false)) {
        ExitCode::Failure
    } else {
        ExitCode::Ok
    }
}
