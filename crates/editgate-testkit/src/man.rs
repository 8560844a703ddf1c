//! The man pages, rendered from the CLI's clap definition with clap_mangen: `editgate.1`, and
//! one page per subcommand (`editgate-serve.1`, …), as `git` does. They are committed under
//! `docs/man/` so that `cargo deb` packages them as they are; `cargo xtask man` rewrites them
//! and a test fails when they differ from the CLI.

use std::io;

/// The pages for `cmd` (the `editgate` command), as (file name, roff text), main page first.
pub fn pages(cmd: clap::Command) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd;
    cmd.build();
    let name = cmd.get_name().to_owned();
    let mut out = vec![(format!("{name}.1"), render(cmd.clone())?)];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let full = format!("{name}-{}", sub.get_name());
        let page = sub
            .clone()
            .name(full.clone())
            .bin_name(format!("{name} {}", sub.get_name()));
        out.push((format!("{full}.1"), render(page)?));
    }
    Ok(out)
}

fn render(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("1")
        .manual("editgate manual")
        .render(&mut buf)?;
    Ok(buf)
}
