//! `editgate soak`: a bounded endurance run against the real binary, on loopback only.
//!
//! It copies a policy directory, adds a `url` source served by a local [`Origin`] that cycles
//! through good lists, "not modified", errors, garbage, a shrunken list, hangs and truncated
//! answers, and then, for the whole run: sends `Check` requests at a steady rate, edits a wiki
//! file every `--reload-every` seconds (a real reload through the file watcher), and samples
//! the server's RSS. It prints one line per window and a summary; it exits 1 when any request
//! failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::Mutex;

use crate::ExitCode;
use crate::loadgen::{Child, Mix, percentiles};
use editgate::proto::edit_gate_client::EditGateClient;
use editgate_testkit::origin::{Behavior, FlakyOrigin};
use editgate_testkit::synth::Rng;

/// `editgate soak`
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Policy directory to copy and serve.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"), value_name = "DIR")]
    pub policies: PathBuf,
    /// Length of the run, seconds (at most 6 hours).
    #[arg(long, default_value_t = 600)]
    pub seconds: u64,
    /// Steady request rate, requests per second.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// Seconds between policy edits (each one a real reload).
    #[arg(long, default_value_t = 30)]
    pub reload_every: u64,
    /// The live source's `refresh`, seconds; the origin changes behavior as often.
    #[arg(long, default_value_t = 5)]
    pub refresh: u64,
    /// Seconds per report line.
    #[arg(long, default_value_t = 30)]
    pub window: u64,
}

/// Requests and latencies of one report window.
#[derive(Default)]
struct Window {
    ok: u64,
    failed: u64,
    micros: Vec<u32>,
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The behaviors the origin cycles through, one per refresh period.
fn schedule(v1: &[u8], v2: &[u8], tiny: &[u8]) -> Vec<(&'static str, Behavior)> {
    let serve = |body: &[u8], etag: &str| Behavior::Serve {
        body: body.to_vec(),
        etag: format!("\"{etag}\""),
    };
    vec![
        ("good v1", serve(v1, "v1")),
        ("304", serve(v1, "v1")),
        ("HTTP 500", Behavior::Status(500)),
        ("garbage", serve(b"<html>maintenance</html>\n\x00\xff", "junk")),
        ("shrunken", serve(tiny, "tiny")),
        ("hang", Behavior::Hang(Duration::from_secs(3))),
        ("truncated", Behavior::Truncate(v2.to_vec())),
        ("good v2", serve(v2, "v2")),
    ]
}

/// The sum of the metric lines that start with `prefix` (over their labels).
pub(crate) fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// `GET path` on `addr`: the raw answer, empty when it fails.
pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out
}

async fn run_async(a: &SoakArgs) -> anyhow::Result<bool> {
    let work = crate::scratch_dir("soak")?;
    let dir = work.join("policies");
    copy_dir(&a.policies, &dir)?;

    // The live list: the shipped Tor exits as v1, most of them as v2.
    let tor_text = std::fs::read(dir.join("lists/tor-exit-addresses.txt")).unwrap_or_default();
    let (_, ips) = editgate_core::sources::tor::parse_bytes(&tor_text)?;
    let v1: Vec<u8> = ips.iter().map(|ip| format!("{ip}\n")).collect::<String>().into_bytes();
    let v2: Vec<u8> = ips
        .iter()
        .skip(ips.len() / 10)
        .map(|ip| format!("{ip}\n"))
        .collect::<String>()
        .into_bytes();
    let tiny: Vec<u8> = ips
        .iter()
        .take(10)
        .map(|ip| format!("{ip}\n"))
        .collect::<String>()
        .into_bytes();
    let steps = schedule(&v1, &v2, &tiny);
    let origin = FlakyOrigin::start(steps[0].1.clone())?;
    let mut global = std::fs::read_to_string(dir.join("global.toml"))?;
    global.push_str(&format!(
        r#"
# --- added by `editgate soak` ---
[sources.tor-live]
kind = "tor-exits"
url = "{}"
path = "state/tor-live.txt"
refresh = "{}s"
timeout = "1s"
min_entries = {}
max_age = "1h"

[[rule]]
id = "soak-live-tor"
verdict = "require-login"
mode = "shadow"
when = {{ ip_in = ["tor-live"], account = ["anonymous"] }}
"#,
        origin.url("tor"),
        a.refresh.max(1),
        (ips.len() / 2).max(1)
    ));
    std::fs::write(dir.join("global.toml"), global)?;

    let started = Instant::now();
    let child = Child::spawn(&dir, &[]).await?;
    // The `url` source has no copy yet: editgate answers UNAVAILABLE until its first fetch
    // (it never decides without its data). Load starts when it is ready.
    let ready_by = Instant::now() + Duration::from_secs(30);
    while http_get(child.http, "/healthz").await.starts_with("HTTP/1.1 503") {
        if Instant::now() > ready_by {
            anyhow::bail!("editgate did not become ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = started + Duration::from_secs(a.seconds.clamp(1, 6 * 3600));
    let mix = Arc::new(Mix::load(&dir, 20_000)?);
    let window = Arc::new(Mutex::new(Window::default()));
    let stop = Arc::new(AtomicBool::new(false));

    // Steady load: 8 workers, each at rate/8.
    let workers = 8u64;
    let period = Duration::from_secs_f64(workers as f64 / a.rate.max(1) as f64);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", child.grpc))?
        .connect()
        .await?;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (mix, window, stop) = (mix.clone(), window.clone(), stop.clone());
        let mut client = EditGateClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(0x50a4 + w);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let req = mix.request(&mut rng);
                let t0 = Instant::now();
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(2), client.check(req)).await,
                    Ok(Ok(_))
                );
                let us = t0.elapsed().as_micros() as u32;
                let mut win = window.lock().await;
                if ok {
                    win.ok += 1;
                    win.micros.push(us);
                } else {
                    win.failed += 1;
                }
            }
        }));
    }

    println!(
        "soak: {} s at {} req/s; reload every {} s; source refresh every {} s; origin cycles: {}",
        a.seconds,
        a.rate,
        a.reload_every,
        a.refresh,
        steps.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
    );
    println!(
        "{:>6} {:>9} {:>7} {:>8} {:>8} {:>8} {:>5}  origin now",
        "t (s)", "requests", "failed", "p50 µs", "p99 µs", "RSS", "gen"
    );
    let (mut total_ok, mut total_failed) = (0u64, 0u64);
    let mut rss_kb: Vec<u64> = Vec::new();
    let mut next_reload = started + Duration::from_secs(a.reload_every.max(1));
    let mut next_step = started + Duration::from_secs(a.refresh.max(1));
    let mut next_report = started + Duration::from_secs(a.window.max(1));
    let (mut step, mut reloads) = (0usize, 0u64);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Instant::now();
        if now >= next_step {
            step = (step + 1) % steps.len();
            origin.set(steps[step].1.clone());
            next_step = now + Duration::from_secs(a.refresh.max(1));
        }
        if now >= next_reload {
            reloads += 1;
            let wiki = dir.join("wikis/enwiki.toml");
            let mut text = std::fs::read_to_string(&wiki)?;
            text.push_str(&format!("# soak reload {reloads}\n"));
            editgate::fetch::write_atomically(&wiki, text.as_bytes())?;
            next_reload = now + Duration::from_secs(a.reload_every.max(1));
        }
        if now >= next_report || now >= end {
            let w = std::mem::take(&mut *window.lock().await);
            let (p50, p99, _) = percentiles(w.micros.iter().copied());
            let rss = child
                .proc_status("VmRSS:")
                .trim_end_matches(" kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
            rss_kb.push(rss);
            let metrics = http_get(child.http, "/metrics").await;
            let generation = metric(&metrics, "editgate_snapshot_generation ");
            println!(
                "{:>6} {:>9} {:>7} {:>8} {:>8} {:>5.1}MB {:>5}  {}",
                started.elapsed().as_secs(),
                w.ok + w.failed,
                w.failed,
                p50,
                p99,
                rss as f64 / 1024.0,
                generation,
                steps[step].0
            );
            total_ok += w.ok;
            total_failed += w.failed;
            next_report = now + Duration::from_secs(a.window.max(1));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let last = std::mem::take(&mut *window.lock().await);
    total_ok += last.ok;
    total_failed += last.failed;
    let metrics = http_get(child.http, "/metrics").await;
    let fetches = |r: &str| {
        metric(
            &metrics,
            &format!("editgate_source_fetches_total{{source=\"tor-live\",result=\"{r}\"}}"),
        )
    };
    println!(
        "summary: {} requests, {} failed; {} policy edits, {} reloads ok, {} rejected; fetches: {} updated, {} not modified, {} rejected, {} failed; origin requests {}",
        total_ok + total_failed,
        total_failed,
        reloads,
        metric(&metrics, "editgate_reload_success_total"),
        metric(&metrics, "editgate_reload_failures_total"),
        fetches("updated"),
        fetches("not_modified"),
        fetches("rejected"),
        fetches("failed"),
        origin.requests()
    );
    if let (Some(first), Some(max), Some(last)) = (rss_kb.first(), rss_kb.iter().max(), rss_kb.last()) {
        println!(
            "RSS: first {:.1} MB, last {:.1} MB, max {:.1} MB",
            *first as f64 / 1024.0,
            *last as f64 / 1024.0,
            *max as f64 / 1024.0
        );
    }
    child.stop().await;
    let _ = std::fs::remove_dir_all(&work);
    Ok(total_failed == 0 && total_ok > 0)
}

/// Runs `soak`: exit 0 when no request failed, 1 otherwise, 2 on a setup error.
pub fn run(a: &SoakArgs) -> ExitCode {
    match crate::block_on(run_async(a)) {
        Ok(true) => ExitCode::Ok,
        Ok(false) => ExitCode::Failure,
        Err(code) => code,
    }
}
