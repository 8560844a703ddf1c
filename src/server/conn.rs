//! Accepting connections on both ports: a cap on open connections per port, `TCP_NODELAY`,
//! and a deadline for a client's first bytes.
//!
//! Without these, idle connections piled up until the process ran out of file descriptors;
//! then `accept` failed on both ports, and `/healthz` and gRPC timed out (600 idle
//! connections under a limit of 512 did it). Now each port holds at most its cap (the
//! default splits the descriptor limit between the ports, see [`connection_cap`]); past it,
//! a new connection is closed at once and counted, so a client fails fast and the other port
//! is unaffected. A connection that sends nothing within `header_timeout` is closed (gRPC
//! clients send their preface at once; HTTP clients get hyper's header read timeout, which
//! also ends idle keep-alive connections). Established gRPC connections are checked with
//! HTTP/2 keepalive pings, so a dead peer does not hold its slot.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Sleep;

use super::State;
use super::metrics::PortLabel;

/// Descriptors kept back from the connection caps: log files, lists being read, the
/// watcher, the fetcher's sockets.
const RESERVED_FDS: u64 = 64;

/// The connection cap of one port: `configured`, or when 0, half of what the file descriptor
/// limit leaves after `RESERVED_FDS` (at least 16, at most 16,384).
pub fn connection_cap(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let soft = nofile_limit().unwrap_or(1024);
    (soft.saturating_sub(RESERVED_FDS) / 2).clamp(16, 16_384) as usize
}

/// The soft `RLIMIT_NOFILE`, when it can be read (through the `rlimit` crate: the project
/// forbids `unsafe`, and libc's `getrlimit` is unsafe to call).
fn nofile_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
}

/// One accepted connection: the socket, its slot under the port's cap, and the deadline for
/// its first bytes.
pub struct Conn<IO> {
    io: IO,
    first_bytes: Option<Pin<Box<Sleep>>>,
    _slot: Slot,
}

/// A connection's place under its port's cap; frees it and updates the gauge when dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read
            && buf.filled().len() > before
        {
            self.first_bytes = None;
        }
        if read.is_pending()
            && let Some(deadline) = self.first_bytes.as_mut()
        {
            ready!(deadline.as_mut().poll(cx));
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent nothing within header_timeout",
            )));
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Conn<TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// A listening socket: TCP, or a Unix-domain socket for a local web server.
pub trait Listener: Send + 'static {
    /// A connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection, set up for request-response traffic.
    fn next(&self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn next(&self) -> io::Result<TcpStream> {
        let (tcp, _peer) = self.accept().await?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        Ok(tcp)
    }
}

impl Listener for UnixListener {
    type Io = UnixStream;

    async fn next(&self) -> io::Result<UnixStream> {
        Ok(self.accept().await?.0)
    }
}

/// Accepts on `listener` for `port` (`grpc`, `http`, `http-socket`, `console`) on a background
/// task, and hands out the connections admitted under the cap, until `stop`. The listener
/// closes when the task ends; [`Accepting::close`] waits for that.
pub fn accept<L: Listener>(
    listener: L,
    port: &'static str,
    state: &Arc<State>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (mpsc::Receiver<Conn<L::Io>>, Accepting) {
    let cap = connection_cap(state.config.max_connections);
    let slots = Arc::new(Semaphore::new(cap));
    let first_bytes = state.config.header_timeout;
    let label = PortLabel { port };
    let open = state.metrics.connections.get_or_create(&label).clone();
    let refused = state.metrics.connections_refused.get_or_create(&label).clone();
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.next() => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            let io = match accepted {
                Ok(io) => io,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was
                    // accepted: wait a little instead of spinning, and go on.
                    tracing::debug!(port, "accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                refused.inc();
                tracing::debug!(port, cap, "connection cap reached: closing a new connection");
                drop(io);
                continue;
            };
            open.inc();
            let conn = Conn {
                io,
                first_bytes: Some(Box::pin(tokio::time::sleep(first_bytes))),
                _slot: Slot {
                    _permit: permit,
                    open: open.clone(),
                },
            };
            if tx.send(conn).await.is_err() {
                return;
            }
        }
    });
    (rx, Accepting(task))
}

/// The accept task of one port.
pub struct Accepting(tokio::task::JoinHandle<()>);

impl Accepting {
    /// Stops accepting and returns once the listener is closed.
    pub async fn close(self) {
        self.0.abort();
        let _ = self.0.await;
    }
}
