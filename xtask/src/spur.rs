//! `cargo xtask spur`: Spur's feed at scale, against the real binary, on loopback only.
//!
//! It copies a policy directory (the shipped one), adds a `spur-feed` source with a generated
//! feed of `--records` records (`editgate_testkit::synth::write_spur_feed`, gzipped as Spur
//! publishes it) and the rules of `examples/spur`, then measures:
//!
//! 1. **Load and first answer**: from `editgate serve`'s start to its first answer carrying an
//!    address's reputation; the server's resident memory then (`VmRSS`) and at its peak
//!    (`VmHWM`).
//! 2. **A reload under load**: gRPC `Check`s from `--connections` connections for
//!    `--load-seconds`, while a wiki file is edited (a real reload through the watcher, which
//!    reads the whole feed again); every request must succeed, and the answers must switch to
//!    the new policy version. Latency percentiles of the whole run, and the peak memory.
//! 3. **`decide` per call** in this process, on the same directory: an address in the feed
//!    (index lookup, reputation, every rule) and one outside it, each call timed on its own.
//!
//! `--keep DIR` leaves the policy directory there, for `cargo xtask cpu --policies DIR`.
//! It exits 1 when any request failed.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::Mutex;

use crate::ExitCode;
use crate::loadgen::{Child, percentiles};
use crate::soak::copy_dir;
use editgate::proto::edit_gate_client::EditGateClient;
use editgate::proto::{Account, AccountKind, CheckRequest};

/// The generator's seed: `--decide-only` finds the feed's addresses again with it.
const SEED: u64 = 0x5157_0A11;

/// `cargo xtask spur`
#[derive(Debug, Args)]
pub struct SpurArgs {
    /// Policy directory to copy and add the feed to.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"), value_name = "DIR")]
    policies: PathBuf,
    /// Records in the generated feed.
    #[arg(long, default_value_t = 5_000_000)]
    records: usize,
    /// Seconds of load around the reload.
    #[arg(long, default_value_t = 30)]
    load_seconds: u64,
    /// Client connections during the reload.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Calls timed per `decide` measurement.
    #[arg(long, default_value_t = 1_000_000)]
    calls: usize,
    /// Leave the policy directory with its feed here (for `cargo xtask cpu --policies`).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Only time `decide`, on the directory an earlier `--keep DIR` left (same `--records`).
    #[arg(long, requires = "keep")]
    decide_only: bool,
}

pub fn run(a: &SpurArgs) -> ExitCode {
    match crate::block_on(run_async(a)) {
        Ok(true) => ExitCode::Ok,
        Ok(false) => ExitCode::Failure,
        Err(code) => code,
    }
}

async fn run_async(a: &SpurArgs) -> anyhow::Result<bool> {
    let work = crate::scratch_dir("spur")?;
    let dir = a.keep.clone().unwrap_or_else(|| work.join("policies"));
    if a.decide_only {
        let addresses = editgate_testkit::synth::write_spur_feed(&mut std::io::sink(), a.records, SEED)?;
        per_call(a, &dir, &addresses)?;
        return Ok(true);
    }
    let addresses = prepare(a, &dir)?;
    let in_feed = addresses[addresses.len() / 2];

    // 1. Load and first answer (the binary built first: its build is not the load).
    crate::editgate_binary()?;
    let started = Instant::now();
    let child = Child::spawn(&dir, &[]).await?;
    let listening = started.elapsed();
    let mut client = EditGateClient::connect(format!("http://{}", child.grpc)).await?;
    let first = client.check(request(in_feed)).await?.into_inner();
    let answered = started.elapsed();
    anyhow::ensure!(
        first.reputation.is_some(),
        "the first answer for an address in the feed has no reputation"
    );
    println!(
        "load: listening after {:.1} s, first answer with a reputation after {:.1} s; VmRSS {}, VmHWM {}",
        listening.as_secs_f64(),
        answered.as_secs_f64(),
        child.proc_status("VmRSS:"),
        child.proc_status("VmHWM:")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("settled: VmRSS {}", child.proc_status("VmRSS:"));

    // 2. A reload under load.
    let ok = reload_under_load(a, &child, &dir, &addresses).await?;
    child.stop().await;

    // 3. decide, per call, in this process.
    per_call(a, &dir, &addresses)?;
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(ok)
}

/// Copies the policy directory to `dir` and adds the feed and the rules of `examples/spur`;
/// the feed's addresses.
fn prepare(a: &SpurArgs, dir: &Path) -> anyhow::Result<Vec<IpAddr>> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    copy_dir(&a.policies, dir)?;
    let started = Instant::now();
    let file = std::fs::File::create(dir.join("spur.json.gz"))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    // Buffered before the encoder: serde_json writes a record in many small pieces.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut gz);
    let addresses = editgate_testkit::synth::write_spur_feed(&mut out, a.records, SEED)?;
    out.into_inner().map_err(|e| e.into_error())?;
    gz.finish()?.sync_all()?;
    let size = std::fs::metadata(dir.join("spur.json.gz"))?.len();
    println!(
        "feed: {} records, {} distinct addresses, {:.0} MB gzipped, written in {:.1} s",
        a.records,
        {
            let mut set = addresses.clone();
            set.sort_unstable();
            set.dedup();
            set.len()
        },
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let example = std::fs::read_to_string(crate::workspace().join("examples/spur/policies/global.toml"))?;
    let rules = &example[example
        .find("[[rule]]")
        .ok_or_else(|| anyhow::anyhow!("examples/spur has no rules"))?..];
    let mut global = std::fs::read_to_string(dir.join("global.toml"))?;
    global.push_str(&format!(
        "\n[sources.spur]\nkind = \"spur-feed\"\npath = \"spur.json.gz\"\nmin_entries = {}\n\n{rules}",
        a.records / 2
    ));
    std::fs::write(dir.join("global.toml"), global)?;
    Ok(addresses)
}

fn request(ip: IpAddr) -> CheckRequest {
    CheckRequest {
        ip: ip.to_string(),
        wiki: "enwiki".into(),
        action: "edit".into(),
        account: Some(Account {
            kind: AccountKind::Anonymous as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn reload_under_load(a: &SpurArgs, child: &Child, dir: &Path, addresses: &[IpAddr]) -> anyhow::Result<bool> {
    let before = {
        let mut c = EditGateClient::connect(format!("http://{}", child.grpc)).await?;
        c.check(request(addresses[0])).await?.into_inner().policy_version
    };
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let switched = Arc::new(Mutex::new(None::<Instant>));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..a.connections {
        let mut c = EditGateClient::connect(format!("http://{}", child.grpc)).await?;
        let (stop, failed, switched, latencies, before) = (
            stop.clone(),
            failed.clone(),
            switched.clone(),
            latencies.clone(),
            before.clone(),
        );
        // Every other request from an address in the feed, the rest from outside it.
        let ips: Vec<IpAddr> = addresses
            .iter()
            .skip(t)
            .step_by(a.connections * 97)
            .take(2_000)
            .copied()
            .chain((0..2_000u32).map(|i| IpAddr::from([9, 9, (i >> 8) as u8, i as u8])))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                i = (i + 2_001) % ips.len();
                let t0 = Instant::now();
                match c.check(request(ips[i])).await {
                    Ok(r) => {
                        mine.push(t0.elapsed().as_micros() as u32);
                        if r.into_inner().policy_version != before {
                            switched.lock().await.get_or_insert_with(Instant::now);
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let edited = Instant::now();
    let wiki = dir.join("wikis/enwiki.toml");
    let mut text = std::fs::read_to_string(&wiki)?;
    text.push_str("\n# reload under load\n");
    std::fs::write(&wiki, text)?;
    let hwm_before = child.proc_status("VmHWM:");
    let deadline = started + Duration::from_secs(a.load_seconds);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let lat = std::mem::take(&mut *latencies.lock().await);
    let (p50, p99, p999) = percentiles(lat.iter().copied());
    let max = lat.iter().copied().max().unwrap_or(0);
    let failed = failed.load(Ordering::Relaxed);
    let switch = switched.lock().await.map(|t| t.duration_since(edited));
    println!(
        "reload under load: {} requests in {} s, {failed} failed; p50 {p50} µs, p99 {p99} µs, p99.9 {p999} µs, max {:.1} ms; new version answering {}; VmHWM {hwm_before} before the reload, {} after; VmRSS {}",
        lat.len(),
        a.load_seconds,
        max as f64 / 1000.0,
        switch.map_or("never".to_owned(), |d| format!(
            "{:.1} s after the edit",
            d.as_secs_f64()
        )),
        child.proc_status("VmHWM:"),
        child.proc_status("VmRSS:")
    );
    Ok(failed == 0 && switch.is_some())
}

/// `decide` (facts, then the rules) per call on the directory's snapshot, in this process,
/// cycling through 100,000 addresses of the feed, and as many outside it spread over the
/// address space as the feed's are, so that neither set is served from warm cache lines
/// (a single repeated address, or a narrow range, would be).
fn per_call(a: &SpurArgs, dir: &Path, addresses: &[IpAddr]) -> anyhow::Result<()> {
    use editgate_core::attempt::{AccountKind, Attempt};
    use editgate_core::engine::{Trace, decide_with_facts};
    let now = jiff::Timestamp::now();
    let started = Instant::now();
    let loaded = editgate_core::load::load_dir(dir, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("in-process load: {:.1} s", started.elapsed().as_secs_f64());
    let snap = &loaded.snapshot;
    let inside: Vec<IpAddr> = addresses
        .iter()
        .step_by((addresses.len() / 100_000).max(1))
        .copied()
        .collect();
    let outside: Vec<IpAddr> = (1..)
        .map(|i: u32| IpAddr::from((i.wrapping_mul(0x9E37_79B1)).to_be_bytes()))
        .filter(|ip| snap.facts(*ip).rep == 0)
        .take(100_000)
        .collect();
    for (name, ips) in [("in the feed", &inside), ("outside it", &outside)] {
        let attempts = ips
            .iter()
            .map(|ip| {
                Attempt::builder(*ip)
                    .wiki("enwiki")
                    .kind(AccountKind::Anonymous)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        anyhow::ensure!(
            (name == "in the feed") == (snap.facts(ips[0]).rep != 0),
            "{} is not {name}",
            ips[0]
        );
        let mut lat: Vec<u32> = Vec::with_capacity(a.calls);
        for round in 0..a.calls {
            let attempt = &attempts[round % attempts.len()];
            let t0 = Instant::now();
            let f = snap.facts(black_box(attempt.ip()));
            black_box(decide_with_facts(snap, attempt, &f, &[], now, Trace::Skip).verdict);
            lat.push(t0.elapsed().as_nanos() as u32);
        }
        let (p50, p99, p999) = percentiles(lat.into_iter());
        println!(
            "decide, addresses {name}: p50 {p50} ns, p99 {p99} ns, p99.9 {p999} ns (each call timed alone, the clock's ~25 ns included)"
        );
    }
    Ok(())
}
