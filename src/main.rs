//! The `editgate` binary: parses the command line and dispatches to [`editgate::cli`].

use clap::{Parser, Subcommand};

use editgate::cli;

/// editgate: decides allow / require-login / block for wiki edit attempts.
#[derive(Debug, Parser)]
#[command(name = "editgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve decisions over gRPC (and metrics over HTTP), reloading on change.
    Serve(cli::serve::ServeArgs),
    /// Decide one edit attempt described by flags.
    Check(cli::check::CheckArgs),
    /// Show the facts about the IP and every rule visited, with why it matched or not.
    Explain(cli::request::RequestArgs),
    /// Check a policy directory: errors as path:line:col, then warnings.
    Validate(cli::validate::ValidateArgs),
    /// Fetch every `url` source once and save the last good copies (as the server does).
    Fetch(cli::fetch::FetchArgs),
    /// Confirm that the current copy of a list may replace a larger one (past `max_shrink`).
    AcceptShrink(cli::accept::AcceptShrinkArgs),
    /// Run the policy test cases in DIR/tests/*.toml.
    Test(cli::test::TestArgs),
    /// Print the JSON Schema of the policy files (for editors such as taplo / Even Better TOML).
    Schema,
    /// Replay recorded attempts under two policy directories and report what changes.
    Replay(cli::replay::ReplayArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Serve(a) => cli::serve::run(a),
        Command::Check(a) => cli::check::run(&a.request, a.explain),
        Command::Explain(a) => cli::check::run(a, true),
        Command::Validate(a) => cli::validate::run(a),
        Command::Test(a) => cli::test::run(a),
        Command::Fetch(a) => cli::fetch::run(a),
        Command::AcceptShrink(a) => cli::accept::run(a),
        Command::Replay(a) => cli::replay::run(a),
        Command::Schema => cli::schema::run(),
    };
    code.into()
}
