//! The `editgate` subcommands. Each takes parsed clap arguments and returns an [`ExitCode`];
//! `main` only parses and dispatches.

pub mod accept;
pub mod check;
pub mod fetch;
pub mod replay;
pub mod request;
pub mod schema;
pub mod serve;
pub mod test;
pub mod validate;

use std::path::Path;

use jiff::Timestamp;

use editgate_core::load::{LoadError, Loaded, load_dir};

/// Process exit codes, the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success (whatever the verdict).
    Ok = 0,
    /// Invalid policy directory, failing test cases, or validation errors.
    Failure = 1,
    /// Usage or I/O error.
    Usage = 2,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}

/// Loads a policy directory for a subcommand, printing errors to stderr and mapping them to
/// the exit code: 1 for an invalid directory, 2 when it cannot be read at all.
pub fn load_or_report(dir: &Path, now: Timestamp) -> Result<Loaded, ExitCode> {
    match load_dir(dir, now) {
        Ok(l) => Ok(l),
        Err(e @ LoadError::Io { .. }) => {
            eprintln!("error: {e}");
            Err(ExitCode::Usage)
        }
        Err(LoadError::Invalid(errors)) => {
            for e in &errors.0 {
                eprintln!("{}", e.to_string().replacen(": ", ": error: ", 1));
            }
            eprintln!(
                "error: policy directory `{}` is invalid ({} error{})",
                dir.display(),
                errors.0.len(),
                plural(errors.0.len())
            );
            Err(ExitCode::Failure)
        }
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
