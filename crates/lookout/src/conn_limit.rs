//! What a connection may hold, for every listener of this process:
//!
//! - **A cap.** Each accepted connection takes a slot from one pool shared by all listeners,
//!   sized well below the open-file limit so the sampler (`/proc`, the Docker socket, the
//!   store) always has descriptors left. Past the cap, up to [`REFUSAL_SLOTS`] connections
//!   are still answered, for at most [`REFUSAL_LIFETIME`]: `503` JSON (`too_many_connections`,
//!   `Retry-After`) to every request but `GET /healthz` and `GET /readyz`, which are served
//!   as usual (with their usual auth) so health checks stay true during a flood. Past those, the socket is closed at once. Both count in
//!   `lookout_connections_refused_total`.
//! - **An idle timeout.** A connection with no request in flight for `idle` is closed
//!   gracefully (HTTP/1: closed; HTTP/2: GOAWAY), whatever its protocol. A response still
//!   streaming (the live SSE stream) is in flight, so it is never cut.
//! - **HSTS** on responses of a direct TLS listener (never on plain HTTP, where a proxy in
//!   front decides).

use std::convert::Infallible;
use std::future::{Future, Ready};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum_server::accept::Accept;
use axum_server::ConnectionShutdown;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use lookout_api::metrics::encode::{counters, gauge, gauges, Labels};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

/// Connections past the cap that still get an answer (each for at most [`REFUSAL_LIFETIME`]).
pub const REFUSAL_SLOTS: usize = 64;
/// Longest a refused connection stays open.
pub const REFUSAL_LIFETIME: Duration = Duration::from_secs(5);
/// Descriptors kept for everything but client connections: the sampler's `/proc` and `/sys`
/// reads, the Docker socket, NVML, the store's pool, logs, the hedged upstream.
pub const RESERVED_FDS: u64 = 256;
/// `Strict-Transport-Security` of direct TLS listeners: one year, this host only.
const HSTS: &str = "max-age=31536000";

/// Raises the soft open-file limit to the hard one (a flood of connections must not starve
/// the sampler) and returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let current = getrlimit(Resource::Nofile);
    // An unlimited hard limit: take a generous finite one (the kernel's nr_open is 1 Mi).
    let hard = current.maximum.unwrap_or(1 << 20);
    let soft = current.current.unwrap_or(hard);
    if soft < hard {
        let wanted = Rlimit {
            current: Some(hard),
            maximum: current.maximum,
        };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => return hard,
            Err(e) => tracing::warn!(error = %e, soft, hard, "could not raise the open-file limit"),
        }
    }
    soft
}

/// The connection cap in force: the configured one, lowered to leave [`RESERVED_FDS`] and
/// the refusal slots free under the open-file limit.
pub fn effective_cap(configured: usize, nofile: u64) -> usize {
    let room = nofile.saturating_sub(RESERVED_FDS + REFUSAL_SLOTS as u64);
    configured
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1)
}

/// The slots shared by every listener of the process.
pub struct ConnPool {
    slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    limit: usize,
}

impl ConnPool {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(limit)),
            refusals: Arc::new(Semaphore::new(REFUSAL_SLOTS)),
            limit,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// One listener's counters.
#[derive(Default)]
pub struct ListenerStats {
    name: &'static str,
    open: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    idle_closed: AtomicU64,
    last_refusal_log: Mutex<Option<Instant>>,
}

impl ListenerStats {
    fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        // One line a minute at most: a flood must not flood the log too.
        let mut last = self
            .last_refusal_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!(
                listener = self.name,
                refused_total = self.refused.load(Ordering::Relaxed),
                "connection limit reached: refusing new connections"
            );
        }
    }
}

/// The connection figures of every listener in `/metrics`.
pub struct ConnMetrics {
    pub pool: Arc<ConnPool>,
    pub listeners: Vec<Arc<ListenerStats>>,
}

impl std::fmt::Debug for ConnMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnMetrics")
    }
}

impl Collector for ConnMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut e,
            "lookout_connections_limit",
            "Most client connections served at once (all listeners)",
            self.pool.limit as u64,
        )?;
        let rows = |pick: fn(&ListenerStats) -> u64| -> Vec<(Labels<'_>, u64)> {
            self.listeners
                .iter()
                .map(|l| (vec![("listener", l.name)], pick(l)))
                .collect()
        };
        gauges(
            &mut e,
            "lookout_connections_open",
            "Client connections open now, by listener",
            &rows(|s| s.open.load(Ordering::Relaxed) as u64),
        )?;
        counters(
            &mut e,
            "lookout_connections_accepted",
            "Client connections accepted, by listener",
            &rows(|s| s.accepted.load(Ordering::Relaxed)),
        )?;
        counters(
            &mut e,
            "lookout_connections_refused",
            "Client connections refused at the connection limit, by listener",
            &rows(|s| s.refused.load(Ordering::Relaxed)),
        )?;
        counters(
            &mut e,
            "lookout_connections_idle_closed",
            "Client connections closed after the idle timeout, by listener",
            &rows(|s| s.idle_closed.load(Ordering::Relaxed)),
        )
    }
}

/// The acceptor of one listener: slot, idle timeout, HSTS.
#[derive(Clone)]
pub struct ConnGuard {
    pool: Arc<ConnPool>,
    stats: Arc<ListenerStats>,
    idle: Duration,
    hsts: bool,
}

impl ConnGuard {
    pub fn new(pool: Arc<ConnPool>, name: &'static str, idle: Duration, hsts: bool) -> Self {
        Self {
            pool,
            stats: Arc::new(ListenerStats {
                name,
                ..Default::default()
            }),
            idle,
            hsts,
        }
    }

    pub fn stats(&self) -> Arc<ListenerStats> {
        self.stats.clone()
    }
}

impl<I, S> Accept<I, S> for ConnGuard {
    type Stream = Guarded<I>;
    type Service = Tracked<S>;
    type Future = Ready<io::Result<(Guarded<I>, Tracked<S>)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let (slot, refusing) = match self.pool.slots.clone().try_acquire_owned() {
            Ok(slot) => (slot, false),
            Err(_) => {
                self.stats.refused();
                match self.pool.refusals.clone().try_acquire_owned() {
                    Ok(slot) => (slot, true),
                    Err(_) => {
                        return std::future::ready(Err(io::Error::other(
                            "connection limit reached",
                        )))
                    }
                }
            }
        };
        let conn = Arc::new(Conn::new(self.stats.clone(), refusing));
        if !refusing {
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(close_when_idle(Arc::downgrade(&conn), self.idle));
        }
        let deadline = refusing.then(|| Box::pin(tokio::time::sleep(REFUSAL_LIFETIME)));
        std::future::ready(Ok((
            Guarded {
                inner: stream,
                _slot: slot,
                deadline,
            },
            Tracked {
                inner: service,
                conn,
                hsts: self.hsts,
            },
        )))
    }
}

/// One connection's state, shared by its service and its responses.
struct Conn {
    stats: Arc<ListenerStats>,
    refusing: bool,
    in_flight: AtomicUsize,
    last_active: Mutex<Instant>,
    /// Handed over with the first request (axum-server puts it in every request).
    shutdown: OnceLock<ConnectionShutdown>,
}

impl Conn {
    fn new(stats: Arc<ListenerStats>, refusing: bool) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        Self {
            stats,
            refusing,
            in_flight: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
            shutdown: OnceLock::new(),
        }
    }

    fn touch(&self) {
        *self
            .last_active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn idle_for(&self) -> Option<Duration> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| {
            self.last_active
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .elapsed()
        })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Closes the connection gracefully once nothing has been in flight for `idle`. Ends when the
/// connection does (its state is dropped). A connection that never sent a request is closed
/// by the listener's first-request timeout instead.
async fn close_when_idle(conn: Weak<Conn>, idle: Duration) {
    loop {
        let wait = {
            let Some(c) = conn.upgrade() else { return };
            match c.idle_for() {
                Some(quiet) if quiet >= idle => {
                    if let Some(s) = c.shutdown.get() {
                        c.stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                        s.graceful_shutdown();
                        return;
                    }
                    idle
                }
                Some(quiet) => idle - quiet,
                None => idle,
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// The client's stream, holding its slot until it closes. A refused connection's stream also
/// carries a deadline, after which it reads and writes nothing more.
pub struct Guarded<I> {
    inner: I,
    _slot: OwnedSemaphorePermit,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Guarded<I> {
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready())
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "refused connection outlived its lifetime",
    )
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The per-connection service: counts requests in flight (until their body is sent), answers
/// refused connections, adds HSTS.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    conn: Arc<Conn>,
    hsts: bool,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S, B> tower::Service<Request<B>> for Tracked<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> BoxFuture {
        if let Some(s) = req.extensions().get::<ConnectionShutdown>() {
            let _ = self.conn.shutdown.set(s.clone());
        }
        let health_check =
            req.method() == Method::GET && matches!(req.uri().path(), "/healthz" | "/readyz");
        if self.conn.refusing {
            // One answer, then the connection closes.
            if let Some(s) = self.conn.shutdown.get() {
                s.graceful_shutdown();
            }
            if !health_check {
                return Box::pin(std::future::ready(Ok(too_many_connections())));
            }
        }
        let in_flight = InFlight::start(self.conn.clone());
        let hsts = self.hsts;
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let (mut parts, body) = resp.into_parts();
            if hsts {
                parts.headers.insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                );
            }
            let body = Body::new(TrackedBody {
                inner: body,
                _in_flight: in_flight,
            });
            Ok(Response::from_parts(parts, body))
        })
    }
}

fn too_many_connections() -> Response<Body> {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": "the server is at its connection limit; retry shortly",
    }});
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A request from its start until its response body is done (or dropped).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.touch();
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_leaves_descriptors_for_the_sampler() {
        assert_eq!(effective_cap(1000, 1 << 20), 1000);
        assert_eq!(effective_cap(1000, 1024), 1024 - 256 - 64);
        assert_eq!(effective_cap(1000, 100), 1);
    }

    #[test]
    fn soft_limit_is_raised_to_the_hard_one() {
        use rustix::process::{getrlimit, Resource};
        let before = getrlimit(Resource::Nofile);
        let limit = raise_nofile_limit();
        let after = getrlimit(Resource::Nofile);
        assert_eq!(after.current, Some(limit));
        if before.maximum.is_some() {
            assert_eq!(after.current, before.maximum);
        }
    }
}
