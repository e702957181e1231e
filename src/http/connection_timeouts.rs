//! Connection timeouts: a client that never finishes its request headers, or keeps a
//! connection open without using it, is disconnected.
//!
//! [`TimedListener`] accepts TCP connections for `axum::serve` (which keeps its graceful
//! shutdown, HTTP/1.1 and HTTP/2) and wraps each in a [`TimedStream`], whose reads fail
//! with `TimedOut` (hyper then closes the connection) when
//! - the connection is opened, or the first byte of a request arrives, and the request
//!   head is not complete within `header_read` (a request counts as started when hyper
//!   hands it to the router), or
//! - no request is in flight and nothing was read or written for `idle`.
//!
//! While a request is in flight no read deadline applies: the request body has its own
//! limit (`http.body_read_timeout_s`, enforced where bodies are read: 408), and a slow
//! handler is bounded by the database's statement timeout. Per request this costs two
//! atomic counter updates, two clock reads and no allocation. The timer is not
//! moved per request: it is set no further ahead than the shorter timeout, and when it
//! fires before what is then due, it is set again.
//!
//! Besides, accepted connections set `TCP_NODELAY`, and a [`TimedStream`] writes bodies
//! lying in the tile cache's memory file with `sendfile` ([`zero_copy`]).
//!
//! hyper's own `header_read_timeout` is not used: its timer also runs while a kept-alive
//! connection waits for its next request, which would close nginx's upstream
//! connections after the (short) header timeout instead of the idle timeout.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, Sleep};

use super::zero_copy;
use crate::cache::arena::BodyArena;

/// The two connection deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a connection's opening, or a request's first byte, to its complete head.
    pub header_read: Duration,
    /// Longest time without a request in flight and without any traffic.
    pub idle: Duration,
}

impl Timeouts {
    /// The shorter of the two: how far ahead a connection's timer is set at most.
    fn shorter(&self) -> Duration {
        self.header_read.min(self.idle)
    }
}

/// A TCP listener whose connections carry [`Timeouts`].
pub struct TimedListener {
    inner: Source,
    timeouts: Timeouts,
    /// The tile cache's memory file, whose bodies the connections send with `sendfile`.
    arena: Option<BodyArena>,
}

/// Where a [`TimedListener`]'s connections come from.
#[derive(Debug)]
enum Source {
    /// Accepted from the socket.
    Socket(TcpListener),
    /// Accepted elsewhere and handed over ([`crate::io_threads`]), with the socket's
    /// address.
    Handed {
        connections: UnboundedReceiver<Handed>,
        local: SocketAddr,
    },
}

/// An accepted connection handed to another runtime: the socket (taken off the
/// accepting runtime's reactor) and the peer's address.
pub type Handed = (std::net::TcpStream, SocketAddr);

impl TimedListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener, timeouts: Timeouts) -> Self {
        Self {
            inner: Source::Socket(inner),
            timeouts,
            arena: None,
        }
    }

    /// A listener of the connections another task accepts from the socket at `local`
    /// and sends on `connections`. Once they stop coming (the sender is dropped), it
    /// waits for the server's graceful shutdown, which stops asking.
    pub fn handed(
        connections: UnboundedReceiver<Handed>,
        local: SocketAddr,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            inner: Source::Handed { connections, local },
            timeouts,
            arena: None,
        }
    }

    /// Connections that send bodies lying in `arena` from its file ([`zero_copy`]).
    pub fn sending_from(mut self, arena: Option<BodyArena>) -> Self {
        self.arena = arena;
        self
    }
}

impl Listener for TimedListener {
    type Io = TimedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let accepted = match &mut self.inner {
                Source::Socket(listener) => TcpListener::accept(listener).await,
                Source::Handed { connections, .. } => match connections.recv().await {
                    // On this runtime's reactor from now on.
                    Some((stream, peer)) => TcpStream::from_std(stream).map(|s| (s, peer)),
                    None => std::future::pending().await,
                },
            };
            match accepted {
                Ok((stream, addr)) => {
                    // As nginx's `tcp_nodelay`: a response's last segment goes out at once,
                    // not after the client's (delayed) acknowledgement of the one before.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY refused");
                    }
                    let stream = TimedStream::new(stream, self.timeouts, self.arena.clone());
                    return (stream, addr);
                }
                Err(e) => accept_error(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Source::Socket(listener) => listener.local_addr(),
            Source::Handed { local, .. } => Ok(*local),
        }
    }
}

/// As axum's own listener: a client that went away is skipped; anything else (e.g. out
/// of file descriptors) is logged and retried after a second.
pub async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Requests of one connection, counted by [`Tracked`] and read by its [`TimedStream`].
#[derive(Debug, Default)]
struct Activity {
    /// Requests whose response future has not finished.
    in_flight: AtomicUsize,
    /// Requests started so far.
    started: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head (from the first byte, or the connection's opening).
    Header,
    /// A request is in flight: no read deadline.
    Busy,
    /// Between requests.
    Idle,
}

/// An accepted connection with read deadlines (see the module documentation), whose
/// writes send cached bodies from the cache's memory file when it has one.
pub struct TimedStream {
    inner: TcpStream,
    arena: Option<BodyArena>,
    timeouts: Timeouts,
    activity: Arc<Activity>,
    phase: Phase,
    seen_started: u64,
    last_io: Instant,
    /// When the current request head began (the `Header` phase's start).
    header_since: Instant,
    /// The timer, set lazily: it never runs later than the phase's deadline ([`Self::due`]),
    /// but it is not moved on every request (each move re-files it in the runtime's timer
    /// wheel); when it fires early, it is set again for what is then due.
    deadline: Pin<Box<Sleep>>,
}

impl TimedStream {
    fn new(inner: TcpStream, timeouts: Timeouts, arena: Option<BodyArena>) -> Self {
        let now = Instant::now();
        Self {
            inner,
            arena,
            timeouts,
            activity: Arc::default(),
            phase: Phase::Header,
            seen_started: 0,
            last_io: now,
            header_since: now,
            deadline: Box::pin(tokio::time::sleep_until(now + timeouts.shorter())),
        }
    }

    /// The current phase's deadline: the request head's, or the idle one (which writes
    /// push back). Meaningless while `Busy`.
    fn due(&self) -> Instant {
        match self.phase {
            Phase::Header => self.header_since + self.timeouts.header_read,
            Phase::Busy | Phase::Idle => self.last_io + self.timeouts.idle,
        }
    }

    /// When to set the timer at `now` for a deadline `due`: no further ahead than the
    /// shorter timeout. A phase that begins later can only be due later than that (a head
    /// begun at `now` or after is due `header_read` after it at the earliest, an idle
    /// spell `idle` after), so the timer never fires after a deadline without being moved.
    fn timer_for(&self, due: Instant, now: Instant) -> Instant {
        due.min(now + self.timeouts.shorter())
    }

    /// Follows the requests [`Tracked`] counted since the last look; `now`, if the caller
    /// has read the clock, saves reading it again.
    fn sync_phase(&mut self, now: Option<Instant>) {
        if self.activity.in_flight.load(Ordering::Acquire) > 0 {
            self.phase = Phase::Busy;
            return;
        }
        let started = self.activity.started.load(Ordering::Acquire);
        if started != self.seen_started || self.phase == Phase::Busy {
            // A request began (and has ended) since: the connection is between requests.
            self.seen_started = started;
            self.phase = Phase::Idle;
            self.last_io = now.unwrap_or_else(Instant::now);
        }
    }

    fn on_read(&mut self) {
        let now = Instant::now();
        self.last_io = now;
        self.sync_phase(Some(now));
        if self.phase == Phase::Idle {
            // The first byte of the next request: its head has `header_read` to arrive.
            self.phase = Phase::Header;
            self.header_since = self.last_io;
        }
    }

    /// A write that took bytes pushes the idle deadline back. Only an `Idle` connection
    /// reads the clock for it: in the other phases the deadline does not depend on
    /// `last_io` (the head's runs from `header_since`; `Busy` has none), and the way out
    /// of them to `Idle` ([`Self::sync_phase`]) sets `last_io` anew, later than any
    /// write before it. A phase seen stale (a request that has ended since) is therefore
    /// harmless, and a hit's response costs no clock read.
    fn after_write(&mut self, result: &Poll<io::Result<usize>>) {
        if self.phase == Phase::Idle && matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.last_io = Instant::now();
        }
    }

    /// A read found nothing: fails once the phase's deadline has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.sync_phase(None);
        if self.phase == Phase::Busy {
            return Poll::Pending;
        }
        while self.deadline.as_mut().poll(cx).is_ready() {
            let (due, now) = (self.due(), Instant::now());
            if due > now {
                // Set for an earlier deadline that has moved on since (requests, writes).
                let next = self.timer_for(due, now);
                self.deadline.as_mut().reset(next);
                continue;
            }
            let what = match self.phase {
                Phase::Header => "request head not received in time",
                _ => "idle connection",
            };
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
        }
        Poll::Pending
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.on_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = match &this.arena {
            Some(arena) => {
                zero_copy::poll_write(&mut this.inner, arena, cx, &[io::IoSlice::new(buf)])
            }
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        };
        this.after_write(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = match &this.arena {
            Some(arena) => zero_copy::poll_write(&mut this.inner, arena, cx, bufs),
            None => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
        };
        this.after_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A service told the peer's address with each request.
pub trait PeerService: tower::Service<Request> {
    /// Serves `request` of the connection from `peer`; the address goes into the
    /// request's extensions (`ConnectInfo<SocketAddr>`, as
    /// `into_make_service_with_connect_info` puts it) if anything reads it.
    fn call_from(&mut self, request: Request, peer: ConnectInfo<SocketAddr>) -> Self::Future;
}

/// Makes the per-connection service for `axum::serve`: the app `S` (the server's
/// [`App`](crate::http::App)), given the peer's address ([`PeerService`]) and counting
/// its requests for the connection's [`TimedStream`].
#[derive(Clone)]
pub struct MakeTracked<S> {
    app: S,
}

impl<S> MakeTracked<S> {
    /// Serves `app`.
    pub fn new(app: S) -> Self {
        Self { app }
    }
}

impl<'a, S: Clone> tower::Service<IncomingStream<'a, TimedListener>> for MakeTracked<S> {
    type Response = Tracked<S>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Tracked<S>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'a, TimedListener>) -> Self::Future {
        std::future::ready(Ok(Tracked {
            app: self.app.clone(),
            peer: ConnectInfo(*stream.remote_addr()),
            activity: Arc::clone(&stream.io().activity),
        }))
    }
}

/// The app of one connection (see [`MakeTracked`]).
#[derive(Clone)]
pub struct Tracked<S> {
    app: S,
    peer: ConnectInfo<SocketAddr>,
    activity: Arc<Activity>,
}

impl<S: PeerService> tower::Service<Request> for Tracked<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.app.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        self.activity.started.fetch_add(1, Ordering::AcqRel);
        TrackedFuture {
            inner: self.app.call_from(req, self.peer),
            in_flight: Some(InFlight(Arc::clone(&self.activity))),
        }
    }
}

/// Ends a request's in-flight count when its response is ready (or it is dropped).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Tracked`].
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        this.in_flight.take();
        Poll::Ready(output)
    }
}
