//! One client connection: HTTP/1.1 through hyper, a deadline on every request head, an idle
//! timeout between requests, and why the connection closed.
//!
//! The head deadline is hyper's own `header_read_timeout`. hyper starts that timer whenever the
//! connection waits for a head, on a kept-alive connection too (hyperium/hyper#3828), so alone it
//! would also be the idle timeout: a client that paused 11 s between two calls would be cut at
//! the default 10 s. [`HeadClock`] is the timer hyper is given: it leaves the first request's
//! deadline as hyper sets it (from the accept), and for a later request waits up to the idle
//! timeout for the first byte before the header deadline starts. That is how Go's `IdleTimeout`
//! and `ReadHeaderTimeout`, and Envoy's `idle_timeout` and `request_headers_timeout`, split the
//! two; hyper has no idle timeout of its own yet (hyperium/hyper#1628).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tower::ServiceExt;

use crate::metrics;

/// What a connection is allowed before it delivers a request head.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `HTTP_HEADER_TIMEOUT_SECS`.
    pub header_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_SECS`.
    pub idle_timeout: Duration,
    /// The most a request head may take in hyper's buffer, request line included; past it
    /// hyper answers a bare `431`. `MAX_REQUEST_HEADER_BYTES` plus room for the request line and
    /// line breaks, so a head within that limit always reaches our own check (and its JSON
    /// `431`), while a slow client cannot make its connection's buffer grow to hyper's default
    /// of 400 KiB.
    pub max_head_bytes: usize,
}

/// Why a connection closed: the `reason` label of `http_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client closed it, or the exchange ended (`Connection: close`, graceful shutdown).
    Ended,
    /// No complete request head within `HTTP_HEADER_TIMEOUT_SECS`.
    HeaderTimeout,
    /// No byte of a next request within `HTTP_IDLE_TIMEOUT_SECS`.
    IdleTimeout,
    /// A malformed request, a reset, or a client gone mid-request.
    Error,
    /// Still open when the shutdown grace period ended.
    Shutdown,
}

impl Closed {
    pub const ALL: [Self; 5] = [
        Self::Ended,
        Self::HeaderTimeout,
        Self::IdleTimeout,
        Self::Error,
        Self::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ended => "ended",
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Error => "error",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Serves one accepted connection until it closes, holding its slot under `MAX_CONNECTIONS`
/// (`permit`) until then. Dropped at the end of the shutdown grace period, it counts as
/// [`Closed::Shutdown`].
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    settings: Settings,
    shutdown: Watcher,
    permit: OwnedSemaphorePermit,
) {
    let mut open = OpenConnection::new(permit);
    let state = Arc::new(HeadState::default());
    let io = TokioIo::new(CountReads {
        inner: stream,
        state: state.clone(),
    });
    // The peer address, for `ConnectInfo` as `into_make_service_with_connect_info` gives it.
    let service =
        TowerToHyperService::new(router.map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        }));
    let mut builder = http1::Builder::new();
    builder
        .timer(HeadClock {
            state: state.clone(),
            settings,
            tokio: TokioTimer::new(),
        })
        .header_read_timeout(settings.header_timeout)
        .max_header_size(settings.max_head_bytes)
        .keep_alive(true);
    let result = shutdown.watch(builder.serve_connection(io, service)).await;
    open.closed = match result {
        Ok(()) => Closed::Ended,
        Err(error) if error.is_timeout() => match state.expired.load(Ordering::Relaxed) {
            EXPIRED_IDLE => Closed::IdleTimeout,
            _ => Closed::HeaderTimeout,
        },
        Err(error) => {
            tracing::debug!(%error, client_addr = %peer.ip(), "connection failed");
            Closed::Error
        }
    };
    if matches!(open.closed, Closed::HeaderTimeout | Closed::IdleTimeout) {
        tracing::debug!(
            reason = open.closed.label(),
            client_addr = %peer.ip(),
            "connection closed"
        );
    }
}

/// Counts the connection in `http_connections_open` while it lives, and its reason in
/// `http_connections_closed_total` when it goes, however it goes (the task may be dropped).
struct OpenConnection {
    closed: Closed,
    _permit: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        metrics::connection_opened();
        Self {
            closed: Closed::Shutdown,
            _permit: permit,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::connection_closed(self.closed.label());
    }
}

const EXPIRED_HEADER: u8 = 1;
const EXPIRED_IDLE: u8 = 2;

/// What the connection's reads and its head timers share. The reads and the timers run in the
/// connection's one task, so relaxed atomics suffice; they are atomics because hyper's timer
/// must be `Send + Sync`.
#[derive(Default)]
struct HeadState {
    /// Bytes read from the client so far.
    bytes_read: AtomicU64,
    /// Whether hyper has asked for a head deadline before: every later one is for a request
    /// after the first, on a kept-alive connection.
    armed_before: AtomicBool,
    /// Which wait ran out, once one has.
    expired: AtomicU8,
}

pin_project! {
    /// The socket, counting the bytes read so [`WaitForHead`] sees a next request begin.
    struct CountReads {
        #[pin]
        inner: TcpStream,
        state: Arc<HeadState>,
    }
}

impl AsyncRead for CountReads {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        ready!(this.inner.poll_read(cx, buf))?;
        let read = (buf.filled().len() - before) as u64;
        this.state.bytes_read.fetch_add(read, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for CountReads {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// The timer hyper's HTTP/1 connection uses for its header deadline (its only use of a timer).
struct HeadClock {
    state: Arc<HeadState>,
    settings: Settings,
    tokio: TokioTimer,
}

impl Timer for HeadClock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.tokio.sleep(duration)
    }

    /// hyper asks for `deadline` = now + `HTTP_HEADER_TIMEOUT_SECS` each time the connection
    /// starts waiting for a head.
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let first = !self.state.armed_before.swap(true, Ordering::Relaxed);
        let wait = if first {
            Wait::Head
        } else {
            Wait::FirstByte {
                bytes_before: self.state.bytes_read.load(Ordering::Relaxed),
            }
        };
        let deadline = match wait {
            Wait::Head => deadline,
            Wait::FirstByte { .. } => self.tokio.now() + self.settings.idle_timeout,
        };
        Box::pin(WaitForHead {
            wait,
            sleep: self.tokio.sleep_until(deadline),
            state: self.state.clone(),
            header_timeout: self.settings.header_timeout,
            tokio: self.tokio.clone(),
        })
    }

    fn now(&self) -> Instant {
        self.tokio.now()
    }
}

#[derive(Clone, Copy)]
enum Wait {
    /// For the first byte of a next request, until the idle timeout.
    FirstByte { bytes_before: u64 },
    /// For the rest of the head, until the header timeout.
    Head,
}

/// Completes when the connection has waited too long for a request head: hyper then closes it.
struct WaitForHead {
    wait: Wait,
    sleep: Pin<Box<dyn Sleep>>,
    state: Arc<HeadState>,
    header_timeout: Duration,
    tokio: TokioTimer,
}

impl Future for WaitForHead {
    type Output = ();

    /// hyper polls this after each read that left the head incomplete, so a first byte is seen
    /// here as soon as it is read.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if let Wait::FirstByte { bytes_before } = this.wait
            && this.state.bytes_read.load(Ordering::Relaxed) > bytes_before
        {
            this.wait = Wait::Head;
            let deadline = this.tokio.now() + this.header_timeout;
            this.tokio.reset(&mut this.sleep, deadline);
        }
        ready!(this.sleep.as_mut().poll(cx));
        let expired = match this.wait {
            Wait::FirstByte { .. } => EXPIRED_IDLE,
            Wait::Head => EXPIRED_HEADER,
        };
        this.state.expired.store(expired, Ordering::Relaxed);
        Poll::Ready(())
    }
}

impl Sleep for WaitForHead {}
