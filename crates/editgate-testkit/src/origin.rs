//! A programmable HTTP origin on loopback for `url` sources: it serves a list with an `ETag`
//! (answering 304 to a matching `If-None-Match`), or fails on command: an error status, a hang
//! past the client's timeout, garbage, a connection closed mid-answer.
//!
//! Written by hand rather than with a server framework because its point is to misbehave at
//! the byte level, which well-behaved servers will not do. The soak run (`cargo xtask soak`) and
//! the live-source tests both use it. It only ever binds 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What the origin does with the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// 200 with this body and `ETag`; 304 when the request's `If-None-Match` matches.
    Serve {
        /// The body.
        body: Vec<u8>,
        /// The entity tag, quoted as sent.
        etag: String,
    },
    /// An HTTP status with an empty body.
    Status(u16),
    /// Accept, read the request, then answer nothing for this long.
    Hang(Duration),
    /// Close the connection after half of the promised body.
    Truncate(Vec<u8>),
    /// 302 to this address.
    Redirect(String),
}

/// A request as the origin saw it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The request target (path).
    pub path: String,
    /// The `If-None-Match` header, when sent.
    pub if_none_match: Option<String>,
    /// Every header but the request line, as sent (name, trimmed value).
    pub headers: Vec<(String, String)>,
}

struct Shared {
    behavior: Mutex<Behavior>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    requests: AtomicU64,
}

/// A running origin; stops when dropped.
pub struct FlakyOrigin {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FlakyOrigin {
    /// Starts an origin on `127.0.0.1:0` with an initial behavior.
    pub fn start(behavior: Behavior) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            behavior: Mutex::new(behavior),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
        });
        let s = shared.clone();
        std::thread::Builder::new().name("origin".into()).spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = s.clone();
                    let _ = std::thread::Builder::new()
                        .name("origin-conn".into())
                        .spawn(move || serve(&s, conn));
                }
            }
        })?;
        Ok(Self { addr, shared })
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Changes what the next requests get.
    pub fn set(&self, behavior: Behavior) {
        *self.shared.behavior.lock().unwrap_or_else(PoisonError::into_inner) = behavior;
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Requests answered or refused so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FlakyOrigin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(s: &Shared, mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut seen = Seen::default();
    {
        let mut reader = BufReader::new(&mut conn);
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line.len() > 8192 => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if first {
                seen.path = l.split(' ').nth(1).unwrap_or("").to_owned();
                first = false;
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("if-none-match") {
                    seen.if_none_match = Some(v.trim().to_owned());
                }
                seen.headers.push((k.to_owned(), v.trim().to_owned()));
            }
        }
    }
    if s.stop.load(Ordering::Relaxed) {
        return;
    }
    s.requests.fetch_add(1, Ordering::Relaxed);
    s.seen.lock().unwrap_or_else(PoisonError::into_inner).push(seen.clone());
    let behavior = s.behavior.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let _ = match behavior {
        Behavior::Serve { etag, .. } if seen.if_none_match.as_deref() == Some(etag.as_str()) => {
            write!(
                conn,
                "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n"
            )
        }
        Behavior::Serve { body, etag } => write!(
            conn,
            "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| conn.write_all(&body)),
        Behavior::Status(code) => write!(
            conn,
            "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Behavior::Hang(d) => {
            std::thread::sleep(d);
            Ok(())
        }
        Behavior::Truncate(body) => write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| conn.write_all(&body[..body.len() / 2])),
        Behavior::Redirect(to) => write!(
            conn,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    };
    let _ = conn.flush();
}
