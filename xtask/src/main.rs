//! `cargo xtask`: editgate's development tools, kept out of the product binary.
//!
//! - `loadgen`: the gRPC service under load on loopback, against a trivial server answering
//!   as many bytes, in the same run; reloads under load; the footprint of the real binary.
//! - `cpu`: the server's CPU time per request on HTTP/JSON, gRPC `Check` and `CheckStream`,
//!   against trivial axum and tonic peers answering as many bytes, with h2load as the client.
//! - `soak`: an endurance run of the real binary: steady load, reloads and a flaky live
//!   source, bounded in time.
//! - `man`: rewrites the man pages in `docs/man/` from the CLI definition.
//!
//! Both drive `target/release/editgate` (built first when `EDITGATE_BIN` does not name
//! another binary). The Cedar comparison is a bench of this package:
//! `cargo bench -p xtask --bench peers`.

mod cpu;
mod loadgen;
mod soak;
mod spur;
mod trivial;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// editgate's development tools.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load-test the gRPC service on loopback, against a trivial baseline (bounded in time).
    Loadgen(loadgen::LoadgenArgs),
    /// Server CPU time per request on every transport against trivial peers, with h2load.
    Cpu(cpu::CpuArgs),
    /// The trivial peers as a process of their own (started by `cpu`).
    #[command(hide = true)]
    TrivialServer(trivial::TrivialArgs),
    /// Endurance run: steady load, reloads and a flaky live source (bounded in time).
    Soak(soak::SoakArgs),
    /// Spur's feed at scale: load, memory, a reload under load, `decide` per call.
    Spur(spur::SpurArgs),
    /// Rewrite the man pages in docs/man/ from the CLI definition.
    Man,
}

/// Exit codes: 0 success, 1 a failed run (failed requests, failed reloads), 2 a setup error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// The run found failures.
    Failure = 1,
    /// The run could not be set up.
    Usage = 2,
}

fn main() -> std::process::ExitCode {
    let code = match &Cli::parse().command {
        Command::Loadgen(a) => loadgen::run(a),
        Command::Soak(a) => soak::run(a),
        Command::Cpu(a) => cpu::run(a),
        Command::Spur(a) => spur::run(a),
        Command::TrivialServer(a) => trivial::run(a),
        Command::Man => man(),
    };
    std::process::ExitCode::from(code as u8)
}

/// `cargo xtask man`: writes `docs/man/*.1` (and removes pages of subcommands that went).
fn man() -> ExitCode {
    use clap::CommandFactory as _;
    let dir = workspace().join("docs/man");
    let written = (|| -> std::io::Result<usize> {
        std::fs::create_dir_all(&dir)?;
        let pages = editgate_testkit::man::pages(editgate::cli::Cli::command())?;
        for old in std::fs::read_dir(&dir)? {
            let old = old?.path();
            if old.extension().is_some_and(|e| e == "1") {
                std::fs::remove_file(old)?;
            }
        }
        for (name, text) in &pages {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(pages.len())
    })();
    match written {
        Ok(n) => {
            println!("{}: {n} man pages", dir.display());
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("cargo xtask man: {e}");
            ExitCode::Failure
        }
    }
}

/// The workspace root (this crate lives in `xtask/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `editgate` binary to run: `EDITGATE_BIN`, else the workspace's release build, built
/// now (`cargo build --release --bin editgate`; quick when it is up to date).
pub fn editgate_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("EDITGATE_BIN") {
        return Ok(bin.into());
    }
    let status = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "editgate",
            "--bin",
            "editgate",
        ])
        .current_dir(workspace())
        .status()?;
    anyhow::ensure!(status.success(), "cargo build --release --bin editgate failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    Ok(target.join("release").join("editgate"))
}

/// Runs an async tool on a multi-thread runtime; a setup error is exit 2.
pub fn block_on<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> Result<T, ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::Usage
        })?;
    rt.block_on(fut).map_err(|e| {
        eprintln!("error: {e:#}");
        ExitCode::Usage
    })
}

/// A scratch directory for a run, `$TMPDIR/editgate-<tag>-<pid>`.
pub fn scratch_dir(tag: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("editgate-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
