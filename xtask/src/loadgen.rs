//! `editgate loadgen`: a bounded load generator for the gRPC service, on loopback only.
//!
//! It measures editgate and a trivial server (the same proto, a handler that returns a
//! constant decision) alternately in the same run, so the ratio between them says how close
//! editgate comes to what the transport allows on this machine. It can also reload a large
//! policy under load, and measure the footprint of the real binary.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use ipnet::IpNet;
use jiff::Timestamp;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};

use crate::ExitCode;
use crate::trivial::Trivial;
use editgate::proto::edit_gate_client::EditGateClient;
use editgate::proto::{Account, AccountKind, CheckRequest, CheckResponse, Verdict};
use editgate::server::{self, Config, State};
use editgate_core::load::{parse_list_checked, read_policy_files};
use editgate_testkit::synth::{Rng, write_policy};

/// `editgate loadgen`
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Policy directory for the in-process editgate (and for the request mix: addresses are
    /// drawn from its Tor and IP-list sources).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"), value_name = "DIR")]
    pub policies: PathBuf,
    /// Load an already running editgate at this loopback address instead of starting one.
    #[arg(long, value_name = "ADDR")]
    pub target: Option<SocketAddr>,
    /// Generate a synthetic policy with this many prefixes (plus the real lists and MaxMind
    /// test databases from --fixtures) instead of using --policies.
    #[arg(long, value_name = "N")]
    pub synth_prefixes: Option<usize>,
    /// The `tests/fixtures` directory, for --synth-prefixes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures"), value_name = "DIR")]
    pub fixtures: PathBuf,
    /// What to measure.
    #[arg(long, default_value = "both", value_parser = ["unary", "stream", "both"])]
    pub mode: String,
    /// TCP connections per server.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight per connection (unary), or streams per connection (stream).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds per measured phase (at most 120).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Rounds; each round measures editgate then the baseline.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Distinct client addresses in the mix; raise it past the cache capacity to force misses.
    #[arg(long, default_value_t = 10_000)]
    pub distinct_ips: u64,
    /// Facts cache capacity of the in-process editgate (0 disables the cache).
    #[arg(long, default_value_t = 100_000)]
    pub cache_capacity: u64,
    /// Skip the trivial baseline server.
    #[arg(long)]
    pub no_baseline: bool,
    /// Reload the snapshot this many times during an extra unary phase (in-process only; with
    /// --synth-prefixes, each reload rebuilds the whole synthetic policy).
    #[arg(long, default_value_t = 0)]
    pub reloads: usize,
    /// Measure the real binary instead: time from start to first answer, and RSS.
    #[arg(long)]
    pub footprint: bool,
}

/// What the mix draws addresses from.
pub(crate) struct Mix {
    tor: Vec<IpAddr>,
    nets: Vec<IpNet>,
    distinct: u64,
}

impl Mix {
    pub(crate) fn load(dir: &Path, distinct: u64) -> anyhow::Result<Self> {
        let files = read_policy_files(dir)?;
        let (policy, _) = editgate_core::policy::check(&files, Timestamp::now())?;
        let (mut tor, mut nets) = (Vec::new(), Vec::new());
        for s in &policy.sources {
            if !s.kind.is_network_list() {
                continue;
            }
            let Ok(bytes) = std::fs::read(dir.join(&s.path)) else {
                continue;
            };
            if let Ok(n) = parse_list_checked(s, &bytes) {
                if s.kind == editgate_core::sources::SourceKind::TorExits {
                    tor.extend(n.iter().map(|n| n.addr()));
                } else {
                    nets.extend(n.into_iter().take(200_000));
                }
            }
        }
        Ok(Self {
            tor,
            nets,
            distinct: distinct.max(1),
        })
    }

    /// Request number `n` of a worker: the address is a pure function of its pool index, so
    /// exactly `distinct` addresses recur. 8% Tor, 12% listed networks, 80% anywhere (one in
    /// five IPv6); 60% anonymous, 10% temporary, 30% registered accounts.
    pub(crate) fn request(&self, rng: &mut Rng) -> CheckRequest {
        let idx = rng.below(self.distinct);
        let mut r = Rng::new(idx.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66);
        let class = r.below(100);
        let ip = if class < 8 && !self.tor.is_empty() {
            self.tor[r.below(self.tor.len() as u64) as usize]
        } else if class < 20 && !self.nets.is_empty() {
            let n = self.nets[r.below(self.nets.len() as u64) as usize];
            r.ip_in(&n)
        } else {
            r.ip()
        };
        let k = rng.below(10);
        let kind = match k {
            0..=5 => AccountKind::Anonymous,
            6 => AccountKind::Temporary,
            _ => AccountKind::Registered,
        };
        let registered_at = (kind != AccountKind::Anonymous).then(|| pbjson_types::Timestamp {
            seconds: Timestamp::now().as_second() - rng.below(2_000) as i64 * 86_400,
            nanos: 0,
        });
        CheckRequest {
            ip: ip.to_string(),
            forwarded_for: Vec::new(),
            wiki: if rng.below(2) == 0 {
                "enwiki".into()
            } else {
                "dewiki".into()
            },
            action: "edit".into(),
            account: Some(Account {
                kind: kind as i32,
                groups: Vec::new(),
                rights: if rng.below(50) == 0 {
                    vec!["ipblock-exempt".into()]
                } else {
                    Vec::new()
                },
                edit_count: rng.below(1_000),
                registered_at,
                email_confirmed: false,
            }),
            request_id: String::new(),
            ..CheckRequest::default()
        }
    }
}

/// Results of one measured phase.
#[derive(Debug, Default, Clone)]
struct Phase {
    ok: u64,
    failed: u64,
    secs: f64,
    /// Latencies in microseconds, with the millisecond the request ended at.
    lat: Vec<(u32, u32)>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    fn merge(&mut self, o: Phase) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.secs += o.secs;
        self.lat.extend(o.lat);
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn percentiles(lat: impl Iterator<Item = u32>) -> (u32, u32, u32) {
    let mut v: Vec<u32> = lat.collect();
    v.sort_unstable();
    (percentile(&v, 0.5), percentile(&v, 0.99), percentile(&v, 0.999))
}

async fn channels(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::new();
    for _ in 0..n.max(1) {
        out.push(
            Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(out)
}

async fn unary(addr: SocketAddr, mix: Arc<Mix>, a: &LoadgenArgs, seed: u64) -> anyhow::Result<Phase> {
    let chans = channels(addr, a.connections).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds.min(120));
    let mut tasks = Vec::new();
    for (c, ch) in chans.into_iter().enumerate() {
        for k in 0..a.concurrency.max(1) {
            let mut client = EditGateClient::new(ch.clone());
            let mix = mix.clone();
            let mut rng = Rng::new(seed ^ ((c * 1_000 + k) as u64 + 1).wrapping_mul(0x9E37));
            tasks.push(tokio::spawn(async move {
                let mut p = Phase::default();
                while Instant::now() < deadline {
                    let req = mix.request(&mut rng);
                    let t0 = Instant::now();
                    match client.check(req).await {
                        Ok(_) => p.ok += 1,
                        Err(_) => p.failed += 1,
                    }
                    let end = t0.elapsed();
                    p.lat
                        .push((end.as_micros() as u32, (t0 + end - start).as_millis() as u32));
                }
                p
            }));
        }
    }
    let mut total = Phase::default();
    for t in tasks {
        total.merge(t.await?);
    }
    total.secs = start.elapsed().as_secs_f64();
    Ok(total)
}

async fn stream(addr: SocketAddr, mix: Arc<Mix>, a: &LoadgenArgs, seed: u64) -> anyhow::Result<Phase> {
    let chans = channels(addr, a.connections).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds.min(120));
    let mut tasks = Vec::new();
    for (c, ch) in chans.into_iter().enumerate() {
        for k in 0..a.concurrency.clamp(1, 4) {
            let mut client = EditGateClient::new(ch.clone());
            let mix = mix.clone();
            let mut rng = Rng::new(seed ^ ((c * 1_000 + k) as u64 + 7).wrapping_mul(0x9E37));
            tasks.push(tokio::spawn(async move {
                let (tx, rx) = tokio::sync::mpsc::channel::<CheckRequest>(4_096);
                let producer = tokio::spawn(async move {
                    while Instant::now() < deadline {
                        for _ in 0..256 {
                            if tx.send(mix.request(&mut rng)).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                let mut p = Phase::default();
                match client
                    .check_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await
                {
                    Ok(resp) => {
                        let mut s = resp.into_inner();
                        loop {
                            match s.message().await {
                                Ok(Some(_)) => p.ok += 1,
                                Ok(None) => break,
                                Err(_) => {
                                    p.failed += 1;
                                    break;
                                }
                            }
                        }
                    }
                    Err(_) => p.failed += 1,
                }
                let _ = producer.await;
                p
            }));
        }
    }
    let mut total = Phase::default();
    for t in tasks {
        total.merge(t.await?);
    }
    total.secs = start.elapsed().as_secs_f64();
    Ok(total)
}

struct Servers {
    editgate: SocketAddr,
    trivial: Option<SocketAddr>,
    state: Option<Arc<State>>,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn start_servers(a: &LoadgenArgs, policies: &Path) -> anyhow::Result<Servers> {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let (editgate, state) = match a.target {
        Some(t) => (t, None),
        None => {
            let mut settings = Config::new(policies.to_owned());
            settings.watch = false;
            settings.cache_capacity = a.cache_capacity;
            let state = State::load(settings)?;
            let g = TcpListener::bind("127.0.0.1:0").await?;
            let h = TcpListener::bind("127.0.0.1:0").await?;
            let addr = g.local_addr()?;
            let mut rx = rx.clone();
            tokio::spawn(server::run(state.clone(), g, h, async move {
                let _ = rx.wait_for(|s| *s).await;
            }));
            (addr, Some(state))
        }
    };
    let trivial = if a.no_baseline {
        None
    } else {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let mut rx = rx.clone();
        let answer = CheckResponse {
            verdict: Verdict::Allow as i32,
            reason: "no rule matched".into(),
            policy_version: "0000000000000000".into(),
            ..CheckResponse::default()
        };
        tokio::spawn(Trivial::new(answer).serve(l, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        Some(addr)
    };
    Ok(Servers {
        editgate,
        trivial,
        state,
        _stop: stop,
    })
}

fn report(name: &str, p: &Phase) {
    let (p50, p99, p999) = percentiles(p.lat.iter().map(|(l, _)| *l));
    if p.lat.is_empty() {
        println!("{name:<28} {:>12.0} decisions/s   failed {}", p.rate(), p.failed);
    } else {
        println!(
            "{name:<28} {:>12.0} req/s   p50 {p50} µs   p99 {p99} µs   p99.9 {p999} µs   failed {}",
            p.rate(),
            p.failed
        );
    }
}

async fn run_async(a: &LoadgenArgs) -> anyhow::Result<()> {
    if let Some(t) = a.target
        && !t.ip().is_loopback()
    {
        anyhow::bail!("--target {t}: loadgen only targets loopback addresses");
    }
    let synth_dir = match a.synth_prefixes {
        Some(n) => {
            let dir = crate::scratch_dir("loadgen")?;
            let started = Instant::now();
            write_policy(&dir, &a.fixtures, n, 100, 42)?;
            eprintln!(
                "synthetic policy: {n} prefixes written in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Some(dir)
        }
        None => None,
    };
    let policies = synth_dir.clone().unwrap_or_else(|| a.policies.clone());
    if a.footprint {
        let r = footprint(&policies).await;
        if let Some(d) = &synth_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        return r;
    }
    let mix = Arc::new(Mix::load(&policies, a.distinct_ips)?);
    let servers = start_servers(a, &policies).await?;
    println!(
        "loadgen: {} connections × {} in flight, {} s phases, {} rounds, {} distinct IPs, {} cores",
        a.connections,
        a.concurrency,
        a.seconds,
        a.rounds,
        a.distinct_ips,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (mut eu, mut tu, mut es, mut ts) = (Phase::default(), Phase::default(), Phase::default(), Phase::default());
    for round in 0..a.rounds.max(1) {
        let seed = round as u64 * 7_919 + 1;
        if a.mode != "stream" {
            eu.merge(unary(servers.editgate, mix.clone(), a, seed).await?);
            if let Some(t) = servers.trivial {
                tu.merge(unary(t, mix.clone(), a, seed).await?);
            }
        }
        if a.mode != "unary" {
            es.merge(stream(servers.editgate, mix.clone(), a, seed).await?);
            if let Some(t) = servers.trivial {
                ts.merge(stream(t, mix.clone(), a, seed).await?);
            }
        }
    }
    if a.mode != "stream" {
        report("unary editgate", &eu);
        if servers.trivial.is_some() {
            report("unary trivial baseline", &tu);
            println!("unary ratio editgate/trivial: {:.3}", eu.rate() / tu.rate().max(1e-9));
        }
    }
    if a.mode != "unary" {
        es.lat.clear();
        ts.lat.clear();
        report("stream editgate", &es);
        if servers.trivial.is_some() {
            report("stream trivial baseline", &ts);
            println!("stream ratio editgate/trivial: {:.3}", es.rate() / ts.rate().max(1e-9));
        }
    }
    if let Some(state) = &servers.state {
        println!(
            "facts cache: {} hits, {} misses",
            state.cache.hits(),
            state.cache.misses()
        );
        if a.reloads > 0 {
            reload_under_load(a, &servers, state, &policies, mix).await?;
        }
    }
    drop(servers);
    if let Some(d) = &synth_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(())
}

/// One unary phase while the snapshot is reloaded `a.reloads` times, each time with a changed
/// global.toml so that a full rebuild and swap happen.
async fn reload_under_load(
    a: &LoadgenArgs,
    s: &Servers,
    state: &Arc<State>,
    dir: &Path,
    mix: Arc<Mix>,
) -> anyhow::Result<()> {
    if a.synth_prefixes.is_none() {
        eprintln!("note: without --synth-prefixes the reloads rewrite nothing and measure an unchanged reload");
    }
    let global = dir.join("global.toml");
    let original = std::fs::read_to_string(&global)?;
    let windows = Arc::new(std::sync::Mutex::new(Vec::<(u32, u32)>::new()));
    let reload_ms = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let phase_start = Instant::now();
    let reloader = {
        let (state, windows, reload_ms, failures, done) = (
            state.clone(),
            windows.clone(),
            reload_ms.clone(),
            failures.clone(),
            done.clone(),
        );
        let (n, secs, synth) = (a.reloads, a.seconds.min(120), a.synth_prefixes.is_some());
        let global = global.clone();
        tokio::spawn(async move {
            let gap = Duration::from_secs_f64(secs as f64 / (n as f64 + 1.0));
            for i in 0..n {
                tokio::time::sleep(gap).await;
                if synth {
                    let _ = std::fs::write(&global, format!("{original}\n# reload {i}\n"));
                }
                let t0 = Instant::now();
                let from = phase_start.elapsed().as_millis() as u32;
                if state.reload().await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                if let Ok(mut v) = reload_ms.lock() {
                    v.push(ms);
                }
                if let Ok(mut w) = windows.lock() {
                    w.push((from, phase_start.elapsed().as_millis() as u32));
                }
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let p = unary(s.editgate, mix, a, 99).await?;
    reloader.await?;
    let windows = windows.lock().map(|w| w.clone()).unwrap_or_default();
    let during = |t: u32| windows.iter().any(|(a, b)| t >= *a && t <= *b + 5);
    let (_, steady99, _) = percentiles(p.lat.iter().filter(|(_, t)| !during(*t)).map(|(l, _)| *l));
    let (_, reload99, _) = percentiles(p.lat.iter().filter(|(_, t)| during(*t)).map(|(l, _)| *l));
    let ms = reload_ms.lock().map(|v| v.clone()).unwrap_or_default();
    let max = ms.iter().copied().fold(0.0, f64::max);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    report("unary during reloads", &p);
    println!(
        "reloads: {} done ({} failed), mean {mean:.0} ms, max {max:.0} ms; failed requests {}; p99 steady {steady99} µs, p99 during reloads {reload99} µs; generation {}",
        ms.len(),
        failures.load(Ordering::Relaxed),
        p.failed,
        state.current().generation
    );
    Ok(())
}

/// Starts the real binary, times the first successful answer, and reads its RSS.
/// The real `editgate serve` binary as a child process on loopback ports; killed on drop.
pub(crate) struct Child {
    /// The process.
    pub process: tokio::process::Child,
    /// Its gRPC address.
    pub grpc: SocketAddr,
    /// Its HTTP address.
    pub http: SocketAddr,
}

impl Child {
    /// Starts `editgate serve` on `policies` with `extra` flags and waits for its address line.
    pub async fn spawn(policies: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let mut cmd = tokio::process::Command::new(crate::editgate_binary()?);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--policies")
            .arg(policies);
        Self::start(cmd).await
    }

    /// Starts a server that prints `… serving gRPC on ADDR and HTTP on ADDR` first, as
    /// `editgate serve` does, and waits for that line.
    pub async fn start(mut cmd: tokio::process::Command) -> anyhow::Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let mut process = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = process.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut line = String::new();
        tokio::io::BufReader::new(stdout).read_line(&mut line).await?;
        let addr = |i: usize| -> anyhow::Result<SocketAddr> {
            Ok(line
                .split_whitespace()
                .nth(i)
                .ok_or_else(|| anyhow::anyhow!("unexpected: {line}"))?
                .parse()?)
        };
        Ok(Self {
            grpc: addr(4)?,
            http: addr(8)?,
            process,
        })
    }

    /// A field of `/proc/PID/status`, like `VmRSS:` (empty when unavailable).
    pub fn proc_status(&self, key: &str) -> String {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.id().unwrap_or(0))).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| l[key.len()..].trim().to_owned())
            .unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.process.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = self.process.wait().await;
    }
}

async fn footprint(policies: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let child = Child::spawn(policies, &["--no-watch"]).await?;
    let mut client = EditGateClient::connect(format!("http://{}", child.grpc)).await?;
    let mut mix_rng = Rng::new(3);
    let mix = Mix::load(policies, 1_000)?;
    client.check(mix.request(&mut mix_rng)).await?;
    let first = started.elapsed();
    for _ in 0..2_000 {
        client.check(mix.request(&mut mix_rng)).await?;
    }
    println!(
        "first answer {:.0} ms after start; RSS {} (peak {})",
        first.as_secs_f64() * 1e3,
        child.proc_status("VmRSS:"),
        child.proc_status("VmHWM:")
    );
    child.stop().await;
    Ok(())
}

/// Runs `loadgen`.
pub fn run(a: &LoadgenArgs) -> ExitCode {
    match crate::block_on(run_async(a)) {
        Ok(()) => ExitCode::Ok,
        Err(code) => code,
    }
}
