//! The `editgate` subcommands. Each takes parsed clap arguments and returns an [`ExitCode`];
//! `main` only parses and dispatches. Their output goes through [`outln!`] and [`out!`].

/// `println!` for a subcommand's output: when the reader has gone away (`editgate check … |
/// head -2`), the command ends quietly with status 0, as `cat` and `rg` do, instead of
/// panicking on the broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for a subcommand's output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!($($arg)*)) };
}

pub mod accept;
pub mod check;
pub mod fetch;
pub mod replay;
pub mod request;
pub mod schema;
pub mod serve;
pub mod settings;
pub mod test;
pub mod validate;

use std::path::Path;

use clap::{Parser, Subcommand};
use jiff::Timestamp;

use editgate_core::load::{LoadError, Loaded, load_dir};

/// editgate: decides allow / require-login / block for wiki edit attempts.
#[derive(Debug, Parser)]
#[command(name = "editgate", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve decisions over gRPC and HTTP/JSON, with health, metrics and the admin console,
    /// reloading on change.
    Serve(Box<settings::ServeSettings>),
    /// Decide one edit attempt described by flags.
    Check(check::CheckArgs),
    /// Show the facts about the IP and every rule visited, with why it matched or not.
    Explain(request::RequestArgs),
    /// Check a policy directory: errors as path:line:col, then warnings.
    Validate(validate::ValidateArgs),
    /// Fetch every `url` source once and save the last good copies (as the server does).
    Fetch(fetch::FetchArgs),
    /// Confirm that the current copy of a list may replace a larger one (past `max_shrink`).
    AcceptShrink(accept::AcceptShrinkArgs),
    /// Run the policy test cases in DIR/tests/*.toml.
    Test(test::TestArgs),
    /// Print the JSON Schema of the policy files (for editors such as taplo / Even Better TOML).
    Schema,
    /// Replay recorded attempts under two policy directories and report what changes.
    Replay(replay::ReplayArgs),
}

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
    load_dir(dir, now).map_err(|e| report_load_error(dir, &e))
}

/// Prints why `dir` could not be loaded; its exit code: 2 when it cannot be read at all, 1
/// when it is invalid ([`report_invalid`]).
pub fn report_load_error(dir: &Path, e: &LoadError) -> ExitCode {
    match e {
        LoadError::Io { .. } => {
            eprintln!("error: {e}");
            ExitCode::Usage
        }
        LoadError::Invalid(errors) => report_invalid(dir, errors),
    }
}

/// Prints a directory's errors, `path:line:col: error: message` each, then a summary; exit 1.
pub fn report_invalid(dir: &Path, errors: &editgate_core::policy::PolicyErrors) -> ExitCode {
    for e in &errors.0 {
        eprintln!("{}", e.to_string().replacen(": ", ": error: ", 1));
    }
    eprintln!(
        "error: policy directory `{}` is invalid ({} error{})",
        dir.display(),
        errors.0.len(),
        plural(errors.0.len())
    );
    ExitCode::Failure
}

/// Writes a subcommand's output to stdout; a closed pipe ends the process with status 0, any
/// other write error with status 2.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(ExitCode::Ok as i32);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(ExitCode::Usage as i32);
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
