//! `cargo xtask cpu`: the server's CPU time per request, on every transport, against the
//! trivial peers ([`crate::trivial`]) in the same run.
//!
//! Each server is a process of its own (`editgate serve`, `cargo xtask trivial-server`); the
//! client is `h2load` (Debian's `nghttp2-client`), another process. The server's CPU time is
//! read from `/proc/<pid>/stat` before and after each run, so neither the client's work nor
//! the scheduling of two cores between client and server enters the figure, which a ratio of
//! throughputs on two cores would mostly measure. Nothing is stored; the table is printed.
//!
//! - HTTP/JSON: `POST /v1/check` over HTTP/1.1 keep-alive (`h2load --h1`), one JSON request.
//! - gRPC unary: `Check` over HTTP/2, several streams per connection.
//! - `CheckStream`: calls of `--batch` requests each; CPU per decision and decisions/s.
//!
//! editgate runs as configured by `--serve-flag` (metrics, per-rule counts, admission and
//! deadlines are always on; add `--serve-flag=--config=FILE` for the decision log). Every
//! editgate run is checked against its own `editgate_decisions_total`: a request that was
//! answered without a decision fails the run.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use prost::Message as _;

use crate::ExitCode;
use crate::loadgen::Child;
use editgate::proto::edit_gate_client::EditGateClient;
use editgate::proto::{Account, AccountKind, CheckRequest};

/// `cargo xtask cpu`
#[derive(Debug, Args)]
pub struct CpuArgs {
    /// Policy directory editgate serves.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"), value_name = "DIR")]
    policies: PathBuf,
    /// Requests per run (`CheckStream`: ten times as many decisions, so that its run lasts
    /// about as long: the CPU clock counts in 10 ms ticks).
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Rounds; each measures every transport on both servers, and the median is reported
    /// (CPU time on a shared machine varies by 10% and more from run to run).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Client connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Concurrent gRPC calls per connection.
    #[arg(long, default_value_t = 8)]
    streams: u32,
    /// Decisions per `CheckStream` call.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// Transports to measure.
    #[arg(long, value_delimiter = ',', default_value = "http,grpc,stream")]
    only: Vec<Transport>,
    /// An extra flag for `editgate serve` (repeat for several).
    #[arg(long = "serve-flag", value_name = "FLAG", allow_hyphen_values = true)]
    serve_flags: Vec<String>,
}

/// A transport measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    /// `POST /v1/check`.
    Http,
    /// gRPC `Check`.
    Grpc,
    /// gRPC `CheckStream`.
    Stream,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Self::Http => "HTTP/JSON /v1/check",
            Self::Grpc => "gRPC Check",
            Self::Stream => "gRPC CheckStream",
        }
    }
}

/// One h2load run against one server.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Server CPU time per decision, µs.
    cpu_us: f64,
    /// Decisions per second.
    rate: f64,
    /// Decisions asked for.
    asked: f64,
}

/// The request measured: a registered account with 5,000 edits on a Tor exit, on enwiki.
fn request() -> CheckRequest {
    CheckRequest {
        ip: "162.247.74.201".into(),
        wiki: "enwiki".into(),
        action: "edit".into(),
        request_id: "bench-1".into(),
        account: Some(Account {
            kind: AccountKind::Registered as i32,
            groups: vec!["user".into(), "autoconfirmed".into()],
            rights: vec!["edit".into()],
            edit_count: 5_000,
            registered_at: Some(pbjson_types::Timestamp {
                seconds: 1_577_836_800,
                nanos: 0,
            }),
            email_confirmed: true,
        }),
        ..Default::default()
    }
}

/// [`request`] as the MediaWiki extension sends it: only the fields it sets.
const REQUEST_JSON: &str = r#"{"ip":"162.247.74.201","wiki":"enwiki","action":"edit","requestId":"bench-1","account":{"kind":"ACCOUNT_KIND_REGISTERED","groups":["user","autoconfirmed"],"rights":["edit"],"editCount":"5000","registeredAt":"2020-01-01T00:00:00Z","emailConfirmed":true}}"#;

/// A gRPC message frame: uncompressed, length, message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The body of editgate's answer to `POST /v1/check` with `json`.
fn http_answer(addr: SocketAddr, json: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "POST /v1/check HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        json.len()
    )?;
    s.write_all(json)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP answer"))?;
    anyhow::ensure!(answer.starts_with(b"HTTP/1.1 200"), "editgate refused the request");
    Ok(answer[at + 4..].to_vec())
}

/// The server's CPU time so far, in seconds (user + system, all threads).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it start with the state (field 3).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).zip(f.get(12)).map_or(Ok(0.0), |(u, s)| {
        Ok::<_, std::num::ParseFloatError>(u.parse::<f64>()? + s.parse::<f64>()?)
    })?;
    Ok(ticks / clock_ticks())
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux unless told otherwise); asked once.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `editgate_decisions_total`, summed over its labels.
async fn decisions(http: SocketAddr) -> f64 {
    crate::soak::metric(
        &crate::soak::http_get(http, "/metrics").await,
        "editgate_decisions_total{",
    )
}

/// Runs h2load with `args`; the requests that succeeded and the seconds it took.
fn h2load(args: &[String]) -> anyhow::Result<(u64, f64)> {
    let out = std::process::Command::new("h2load").args(args).output().map_err(|e| {
        anyhow::anyhow!(
            "cannot run h2load ({e}); install it: apt-get install -y --no-install-recommends nghttp2-client"
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let number_before = |line: &str, word: &str| -> Option<f64> {
        let i = line.find(word)?;
        line[..i].split_whitespace().last()?.parse().ok()
    };
    // `finished in 5.42s,` or `77.33ms,` or `950us,`
    let duration = |d: &str| -> Option<f64> {
        let unit = [("ms", 1e-3), ("us", 1e-6), ("s", 1.0)]
            .into_iter()
            .find(|(u, _)| d.ends_with(u))?;
        Some(d.strip_suffix(unit.0)?.parse::<f64>().ok()? * unit.1)
    };
    let secs = text
        .lines()
        .find_map(|l| duration(l.strip_prefix("finished in ")?.split(',').next()?))
        .ok_or_else(|| anyhow::anyhow!("h2load printed no result:\n{text}"))?;
    let ok = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| number_before(l, " succeeded"))
        .ok_or_else(|| anyhow::anyhow!("h2load printed no request counts:\n{text}"))?;
    Ok((ok as u64, secs))
}

/// Measures one transport on one server.
fn measure(a: &CpuArgs, t: Transport, pid: u32, target: SocketAddr, files: &Path) -> anyhow::Result<Run> {
    let calls = match t {
        Transport::Stream => (a.requests * 10 / a.batch).max(1),
        _ => a.requests,
    };
    let per_call = if t == Transport::Stream { a.batch } else { 1 };
    let mut args: Vec<String> = vec!["-n".into(), calls.to_string(), "-t".into(), "1".into()];
    let grpc_headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"];
    match t {
        Transport::Http => {
            args.extend(["--h1", "-c"].map(String::from));
            args.push(a.connections.to_string());
            args.extend(["-H", "content-type: application/json", "-d"].map(String::from));
            args.push(files.join("check.json").display().to_string());
            args.push(format!("http://{target}/v1/check"));
        }
        Transport::Grpc => {
            args.extend([
                "-c".into(),
                a.connections.to_string(),
                "-m".into(),
                a.streams.to_string(),
            ]);
            args.extend(grpc_headers.map(String::from));
            args.extend(["-d".into(), files.join("check.grpc").display().to_string()]);
            args.push(format!("http://{target}/editgate.v1.EditGate/Check"));
        }
        Transport::Stream => {
            // One call per connection at a time, as a backend's stream would be.
            let c = a.connections.min(calls as u32).max(1);
            args.extend(["-c".into(), c.to_string(), "-m".into(), "1".into()]);
            args.extend(grpc_headers.map(String::from));
            args.extend(["-d".into(), files.join("stream.grpc").display().to_string()]);
            args.push(format!("http://{target}/editgate.v1.EditGate/CheckStream"));
        }
    }
    let before = cpu_seconds(pid)?;
    let (ok, secs) = h2load(&args)?;
    let after = cpu_seconds(pid)?;
    anyhow::ensure!(ok == calls, "{}: {ok} of {calls} calls succeeded", t.label());
    let n = (calls * per_call) as f64;
    Ok(Run {
        cpu_us: (after - before) * 1e6 / n,
        rate: n / secs,
        asked: n,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run_async(a: &CpuArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.rounds > 0 && a.requests > 0 && a.batch > 0,
        "--rounds, --requests and --batch must be positive"
    );
    let flags: Vec<&str> = ["--no-watch"]
        .into_iter()
        .chain(a.serve_flags.iter().map(String::as_str))
        .collect();
    let editgate = Child::spawn(&a.policies, &flags).await?;
    let files = crate::scratch_dir("cpu")?;
    // The request, in both encodings, and editgate's answers, for the trivial peers to send.
    let req = request();
    let json = REQUEST_JSON.as_bytes().to_vec();
    anyhow::ensure!(
        editgate::proto::request_from_json(&json)? == req,
        "the JSON and the protobuf request differ"
    );
    std::fs::write(files.join("check.json"), &json)?;
    std::fs::write(files.join("check.grpc"), frame(&req.encode_to_vec()))?;
    let one = frame(&req.encode_to_vec());
    std::fs::write(files.join("stream.grpc"), one.repeat(a.batch as usize))?;
    let body = http_answer(editgate.http, &json)?;
    std::fs::write(files.join("answer.json"), &body)?;
    let mut client = EditGateClient::connect(format!("http://{}", editgate.grpc)).await?;
    let answer = client.check(req.clone()).await?.into_inner();
    std::fs::write(files.join("answer.pb"), answer.encode_to_vec())?;
    println!(
        "request: {} bytes JSON, {} bytes protobuf; answer: {} bytes JSON, {} bytes protobuf ({})",
        json.len(),
        req.encoded_len(),
        body.len(),
        answer.encoded_len(),
        answer.rule_id
    );
    let mut trivial = tokio::process::Command::new(std::env::current_exe()?);
    trivial
        .arg("trivial-server")
        .arg("--answer")
        .arg(files.join("answer.pb"))
        .arg("--http-body")
        .arg(files.join("answer.json"));
    let trivial = Child::start(trivial).await?;
    let (epid, tpid) = (
        editgate.process.id().unwrap_or_default(),
        trivial.process.id().unwrap_or_default(),
    );
    let mut results: Vec<(Transport, Vec<Run>, Vec<Run>)> = a.only.iter().map(|t| (*t, vec![], vec![])).collect();
    for round in 1..=a.rounds {
        for (t, mine, peer) in &mut results {
            let (eaddr, taddr) = match t {
                Transport::Http => (editgate.http, trivial.http),
                _ => (editgate.grpc, trivial.grpc),
            };
            let decided = decisions(editgate.http).await;
            let e = tokio::task::block_in_place(|| measure(a, *t, epid, eaddr, &files))?;
            // h2load counts a gRPC call as a success by its HTTP status; the counter says
            // whether every request was decided.
            let decided = decisions(editgate.http).await - decided;
            anyhow::ensure!(
                decided == e.asked,
                "{}: editgate decided {decided} of {} requests",
                t.label(),
                e.asked
            );
            let p = tokio::task::block_in_place(|| measure(a, *t, tpid, taddr, &files))?;
            println!(
                "round {round}: {:<20} editgate {:>6.2} µs {:>10.0}/s   trivial {:>6.2} µs {:>10.0}/s",
                t.label(),
                e.cpu_us,
                e.rate,
                p.cpu_us,
                p.rate
            );
            mine.push(e);
            peer.push(p);
        }
    }
    println!();
    println!(
        "server CPU per decision, median of {} rounds; ratio: median of the rounds' ratios (lowest-highest)",
        a.rounds
    );
    println!(
        "{:<20} {:>12} {:>12} {:>18} {:>12} {:>12}",
        "transport", "editgate µs", "trivial µs", "ratio", "editgate /s", "trivial /s"
    );
    for (t, mine, peer) in &results {
        let ratios: Vec<f64> = mine.iter().zip(peer).map(|(e, p)| e.cpu_us / p.cpu_us).collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        println!(
            "{:<20} {:>12.2} {:>12.2} {:>7.2} ({lo:.2}-{hi:.2}) {:>12.0} {:>12.0}",
            t.label(),
            median(mine.iter().map(|r| r.cpu_us).collect()),
            median(peer.iter().map(|r| r.cpu_us).collect()),
            median(ratios.clone()),
            median(mine.iter().map(|r| r.rate).collect()),
            median(peer.iter().map(|r| r.rate).collect()),
        );
    }
    editgate.stop().await;
    trivial.stop().await;
    let _ = std::fs::remove_dir_all(&files);
    Ok(())
}

/// Runs `cpu`.
pub fn run(a: &CpuArgs) -> ExitCode {
    match crate::block_on(run_async(a)) {
        Ok(()) => ExitCode::Ok,
        Err(code) => code,
    }
}
