//! The `editgate` binary: parses the command line and dispatches to [`editgate::cli`].

use clap::Parser as _;

use editgate::cli::{self, Cli, Command};

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
