//! An in-process server on `127.0.0.1:0` and the loopback clients the tests talk to it with
//! (a real tonic client; HTTP by hand, so that the tests need no HTTP client crate).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use editgate::proto::edit_gate_client::EditGateClient;
use editgate::proto::{Account, AccountKind, CheckRequest, CheckResponse};
use editgate::server::{self, Config, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// An in-process server; stops when dropped.
pub(crate) struct Running {
    pub(crate) grpc: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) state: Arc<State>,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) task: Option<tokio::task::JoinHandle<Result<(), server::ServeError>>>,
}

impl Running {
    pub(crate) async fn start(dir: &Path) -> Self {
        let mut config = Config::new(dir.to_owned());
        config.debounce = Duration::from_millis(50);
        Self::start_with(config).await
    }

    pub(crate) async fn start_with(config: Config) -> Self {
        let state = State::load(config).expect("policy loads");
        let g = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc, http) = (g.local_addr().unwrap(), h.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::run(state.clone(), g, h, async move {
            let _ = rx.await;
        }));
        Self {
            grpc,
            http,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub(crate) async fn client(&self) -> EditGateClient<Channel> {
        for _ in 0..50 {
            if let Ok(c) = EditGateClient::connect(format!("http://{}", self.grpc)).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not come up");
    }

    pub(crate) async fn shutdown(mut self) -> Result<(), server::ServeError> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub(crate) fn req(ip: &str, wiki: &str, kind: AccountKind) -> CheckRequest {
    CheckRequest {
        ip: ip.into(),
        wiki: wiki.into(),
        action: "edit".into(),
        account: Some(Account {
            kind: kind as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn registered(ip: &str, wiki: &str, edits: u64, age_days: i64) -> CheckRequest {
    let mut r = req(ip, wiki, AccountKind::Registered);
    let acct = r.account.as_mut().unwrap();
    acct.edit_count = edits;
    let secs = jiff::Timestamp::now().as_second() - age_days * 86_400;
    acct.registered_at = Some(pbjson_types::Timestamp {
        seconds: secs,
        nanos: 0,
    });
    r
}

pub(crate) async fn check(c: &mut EditGateClient<Channel>, r: CheckRequest) -> CheckResponse {
    c.check(r).await.expect("check").into_inner()
}

/// An HTTP answer: status, header lines (names lower-cased), body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    /// The value of header `name` (lower case), if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A GET on loopback, by hand (HTTP/1.1, `Connection: close`): the tests need no HTTP client
/// crate.
pub(crate) async fn http_request(addr: SocketAddr, path: &str) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A GET that must answer 200; its body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> String {
    let r = http_request(addr, path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.body
}

pub(crate) fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric line starting with {line_prefix}"))
}

/// A plain HTTP POST on loopback; returns the status code and the body.
pub(crate) async fn http_post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json");
    http_raw(addr, &head, body).await
}

/// Sends `head` (the request line and headers, without the blank line) and `body` on a new
/// loopback connection; returns the status and the body.
pub(crate) async fn http_raw(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let text = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(text.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        code,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

/// A GET on loopback, whatever the status: (status, body).
pub(crate) async fn http_get_any(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let r = http_request(addr, path).await;
    (r.status, r.body)
}

pub(crate) async fn healthz(addr: std::net::SocketAddr) -> (u16, serde_json::Value) {
    let (code, body) = http_get_any(addr, "/healthz").await;
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// Polls `f` until it is true (up to 20 s): real synchronization on an observable state,
/// never a sleep-then-assert.
pub(crate) async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}
