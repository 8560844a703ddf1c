//! `editgate test DIR`: runs the policy test cases in `DIR/tests/*.toml`.

use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;

use super::check::render_explain;
use super::{ExitCode, load_or_report};
use editgate_core::testcases::{parse_cases, read_case_files, run_case};

/// `editgate test`
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Policy directory.
    pub dir: PathBuf,
    /// Only run cases whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Print every case, not only failures.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Runs `test`.
pub fn run(args: &TestArgs) -> ExitCode {
    let now = Timestamp::now();
    let loaded = match load_or_report(&args.dir, now) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let snap = &loaded.snapshot;
    let files = match read_case_files(&args.dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot read test cases: {e}");
            return ExitCode::Usage;
        }
    };
    let cases = match parse_cases(&files, snap, now) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{}", e.to_string().replacen(": ", ": error: ", 1));
            }
            return ExitCode::Failure;
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for case in cases
        .iter()
        .filter(|c| args.filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())))
    {
        let (result, decision) = run_case(snap, case);
        if result.passed() {
            passed += 1;
            if args.verbose {
                outln!("ok   {} ({})", case.name, case.location);
            }
            continue;
        }
        failed += 1;
        outln!("FAIL {} ({})", case.name, case.location);
        for f in &result.failures {
            outln!("     {f}");
        }
        let facts = snap.report(case.attempt.ip());
        for line in render_explain(snap, &facts, case.attempt.wiki(), &decision, case.now).lines() {
            outln!("     | {line}");
        }
    }
    outln!("{passed} passed, {failed} failed");
    if failed > 0 || (passed == 0 && args.filter.is_none() && cases.is_empty() && !files.is_empty()) {
        ExitCode::Failure
    } else {
        ExitCode::Ok
    }
}
