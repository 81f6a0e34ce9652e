//! Accepting connections without spinning on errors.

use core::future::{Future as _, poll_fn};
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use core::time::Duration;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;

use crate::AcceptBackoff;

/// The connections of a listener, for a server's accept loop (a [`Stream`] for tonic, or
/// [`accept`](Self::accept)).
///
/// An accept error that concerns one connection (reset or aborted before it was accepted) is
/// skipped. Any other (`EMFILE` and `ENFILE` when file descriptors run out, `ENOBUFS`,
/// `ENOMEM`) pauses accepting as [`AcceptBackoff`] says, instead of retrying at once: a
/// listener whose descriptor limit is reached stays readable, and a loop that retries at once
/// spins on one core without ever serving the connections that would free descriptors. The
/// first error of a run, and the 2nd, 4th, 8th, ..., are logged as warnings (the rest at
/// debug); the stream never yields an error and never ends.
///
/// Accepted connections have `TCP_NODELAY` set (gRPC answers are small and latency-bound).
#[derive(Debug)]
pub struct Incoming {
    inner: Accepting<TcpListener>,
}

impl Incoming {
    /// The connections of `listener`; `what` names the listener in logs (`gRPC`, `admin`).
    pub fn new(listener: TcpListener, backoff: AcceptBackoff, what: &'static str) -> Self {
        Self {
            inner: Accepting::new(listener, backoff, what),
        }
    }

    /// The listener's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.listener.local_addr()
    }

    /// The next connection, waiting out accept errors.
    pub async fn accept(&mut self) -> TcpStream {
        poll_fn(|cx| self.inner.poll_accept(cx)).await
    }

    pub(crate) fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<TcpStream> {
        self.inner.poll_accept(cx)
    }
}

impl Stream for Incoming {
    type Item = Result<TcpStream, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_accept(cx).map(|stream| Some(Ok(stream)))
    }
}

// === impl TlsIncoming ===

/// The TLS connections of a listener, for tonic: each accepted connection's handshake runs in
/// its own task (a slow client holds up no other), bounded by a timeout; connections whose
/// handshake fails or times out are closed and logged at debug. At most `max_pending`
/// handshakes run at once; past it, connections wait in the listener's backlog.
pub(crate) struct TlsIncoming {
    incoming: Incoming,
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: Duration,
    max_pending: usize,
    handshakes: JoinSet<Option<TlsStream<TcpStream>>>,
}

impl TlsIncoming {
    pub(crate) fn new(
        incoming: Incoming,
        config: Arc<rustls::ServerConfig>,
        timeout: Duration,
        max_pending: usize,
    ) -> Self {
        Self {
            incoming,
            acceptor: tokio_rustls::TlsAcceptor::from(config),
            timeout,
            max_pending,
            handshakes: JoinSet::new(),
        }
    }
}

impl Stream for TlsIncoming {
    type Item = Result<TlsStream<TcpStream>, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            // Finished handshakes first: they free a slot.
            if let Poll::Ready(Some(joined)) = this.handshakes.poll_join_next(cx) {
                if let Ok(Some(stream)) = joined {
                    return Poll::Ready(Some(Ok(stream)));
                }
                continue;
            }
            if this.handshakes.len() >= this.max_pending {
                // Woken by the next handshake to finish.
                return Poll::Pending;
            }
            let tcp = ready!(this.incoming.poll_accept(cx));
            let acceptor = this.acceptor.clone();
            let timeout = this.timeout;
            this.handshakes.spawn(async move {
                let peer = tcp.peer_addr().ok();
                match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => Some(stream),
                    Ok(Err(error)) => {
                        tracing::debug!(?peer, %error, "TLS handshake failed");
                        None
                    }
                    Err(_) => {
                        tracing::debug!(
                            ?peer,
                            ?timeout,
                            "TLS handshake not finished in time; closed"
                        );
                        None
                    }
                }
            });
        }
    }
}

impl core::fmt::Debug for TlsIncoming {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsIncoming")
            .field("incoming", &self.incoming)
            .field("timeout", &self.timeout)
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

// === impl Accepting ===

/// Something connections are accepted from: a TCP listener, or a test's stand-in.
pub(crate) trait Listener: Unpin {
    /// An accepted connection.
    type Conn;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Conn>>;
}

impl Listener for TcpListener {
    type Conn = TcpStream;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        Self::poll_accept(self, cx).map_ok(|(stream, _)| {
            // Only fails on a socket that is already gone; the connection then fails by itself.
            let _ = stream.set_nodelay(true);
            stream
        })
    }
}

/// The accept loop's state: the listener, the wait in progress and the run of errors.
#[derive(Debug)]
pub(crate) struct Accepting<L> {
    listener: L,
    backoff: AcceptBackoff,
    what: &'static str,
    wait: Option<Pin<Box<Sleep>>>,
    next_wait: Duration,
    errors: u64,
}

impl<L: Listener> Accepting<L> {
    pub(crate) fn new(listener: L, backoff: AcceptBackoff, what: &'static str) -> Self {
        Self {
            listener,
            backoff,
            what,
            wait: None,
            next_wait: backoff.min,
            errors: 0,
        }
    }

    pub(crate) fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<L::Conn> {
        loop {
            if let Some(wait) = &mut self.wait {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            match ready!(self.listener.poll_accept(cx)) {
                Ok(conn) => {
                    if self.errors > 0 {
                        tracing::info!(
                            listener = self.what,
                            errors = self.errors,
                            "accepting connections again"
                        );
                    }
                    self.errors = 0;
                    self.next_wait = self.backoff.min;
                    return Poll::Ready(conn);
                }
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(listener = self.what, error = %e, "a connection failed before it was accepted");
                }
                Err(e) => {
                    self.errors += 1;
                    let wait = self.next_wait;
                    self.next_wait = wait.saturating_mul(2).min(self.backoff.max);
                    if self.errors.is_power_of_two() {
                        tracing::warn!(
                            listener = self.what,
                            error = %e,
                            errors = self.errors,
                            ?wait,
                            "cannot accept connections; waiting before trying again"
                        );
                    } else {
                        tracing::debug!(
                            listener = self.what,
                            error = %e,
                            errors = self.errors,
                            ?wait,
                            "cannot accept connections; waiting before trying again"
                        );
                    }
                    self.wait = Some(Box::pin(tokio::time::sleep(wait)));
                }
            }
        }
    }
}

/// Errors of one connection, not of the listener: the next accept may well succeed.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::VecDeque;

    use tokio::time::Instant;

    use super::*;

    /// EMFILE, as `accept(2)` reports it when the process is out of file descriptors.
    const EMFILE: i32 = 24;

    /// Answers each accept with the next scripted result; once the script is done, with
    /// `then` (an error, or connection number n).
    struct Scripted {
        script: VecDeque<io::Result<u32>>,
        then: fn() -> io::Result<u32>,
        calls: u32,
    }

    impl Scripted {
        fn new(script: Vec<io::Result<u32>>, then: fn() -> io::Result<u32>) -> Self {
            Self {
                script: script.into(),
                then,
                calls: 0,
            }
        }
    }

    impl Listener for Scripted {
        type Conn = u32;

        fn poll_accept(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<u32>> {
            self.calls += 1;
            Poll::Ready(self.script.pop_front().unwrap_or_else(self.then))
        }
    }

    fn emfile() -> io::Result<u32> {
        Err(io::Error::from_raw_os_error(EMFILE))
    }

    fn backoff() -> AcceptBackoff {
        AcceptBackoff::new(Duration::from_millis(5), Duration::from_secs(1))
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_file_descriptors_the_loop_waits_instead_of_spinning() {
        // EMFILE 100,000 times, then a connection: a loop that retried at once would get
        // there immediately.
        let script = (0..100_000).map(|_| emfile()).collect();
        let mut accepting = Accepting::new(Scripted::new(script, || Ok(1)), backoff(), "test");

        let accepted = tokio::time::timeout(
            Duration::from_secs(10),
            poll_fn(|cx| accepting.poll_accept(cx)),
        )
        .await;

        assert!(accepted.is_err(), "accepted while out of descriptors");
        // Attempts at 0, 5, 15, 35, ..., 635 ms, then every second from 1,275 ms: 17 in 10 s.
        assert_eq!(accepting.listener.calls, 17);
        assert_eq!(accepting.errors, 17);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_doubles_and_starts_over_after_an_accepted_connection() {
        let script = vec![emfile(), emfile(), emfile(), Ok(1), emfile(), Ok(2)];
        let mut accepting = Accepting::new(Scripted::new(script, emfile), backoff(), "test");

        let start = Instant::now();
        assert_eq!(poll_fn(|cx| accepting.poll_accept(cx)).await, 1);
        assert_eq!(start.elapsed(), Duration::from_millis(5 + 10 + 20));

        let start = Instant::now();
        assert_eq!(poll_fn(|cx| accepting.poll_accept(cx)).await, 2);
        assert_eq!(start.elapsed(), Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_reset_before_accept_is_skipped_without_waiting() {
        let reset = || Err(io::Error::from(io::ErrorKind::ConnectionReset));
        let aborted = || Err(io::Error::from(io::ErrorKind::ConnectionAborted));
        let script = vec![reset(), aborted(), reset(), Ok(7)];
        let mut accepting = Accepting::new(Scripted::new(script, emfile), backoff(), "test");

        let start = Instant::now();
        assert_eq!(poll_fn(|cx| accepting.poll_accept(cx)).await, 7);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(accepting.listener.calls, 4);
    }

    #[tokio::test]
    async fn a_tcp_listener_yields_its_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut incoming = Incoming::new(listener, AcceptBackoff::default(), "test");
        let addr = incoming.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.accept().await;
        assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
        assert!(accepted.nodelay().unwrap());
    }
}
