//! Server connections that let the answers ready together leave in one write.
//!
//! Each Certify request runs in a task of its own; when it answers, h2's connection task is
//! woken and, run next by the scheduler, writes that one answer to the socket. Under load
//! many answers of the same connection are finished within a few hundred microseconds of each
//! other, and on loopback each write costs the sender the receiver's TCP processing and
//! wake-up too (about 10 µs, as much as a third of the work outside the ECDSA operations).
//!
//! [`CoalescedWrites`] makes the first write of a flush wait one turn of the scheduler when
//! other requests are still being answered ([`InFlight`], counted by [`CoalescingLayer`]): it
//! returns `Pending` and wakes its task at once, so the task goes to the back of the run
//! queue; the tasks already queued (other answers, typically of the same connection) run and
//! queue their frames, and h2 then writes them all in one system call. A write is never held
//! when no other answer is pending, so a lone request is not delayed, and no answer ever waits
//! on a timer.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use tower::{Layer, Service};

use crate::frames::SmallFrames;

// === InFlight ===

/// The number of requests accepted and not answered yet, across the server's connections.
#[derive(Clone, Debug, Default)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(&self) -> Entered {
        self.0.fetch_add(1, Ordering::Relaxed);
        Entered(self.clone())
    }

    fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// One request in flight; dropping it (answered or cancelled) counts it out.
#[derive(Debug)]
struct Entered(InFlight);

impl Drop for Entered {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::Relaxed);
    }
}

// === CoalescingLayer ===

/// Counts every request in [`InFlight`] from the moment h2 hands it to the service until its
/// answer is produced, and cuts answers into [`SmallFrames`] that h2 copies into its write
/// buffer (a longer DATA payload is written on its own).
#[derive(Clone, Debug)]
pub(crate) struct CoalescingLayer {
    in_flight: InFlight,
}

impl CoalescingLayer {
    pub(crate) fn new(in_flight: InFlight) -> Self {
        Self { in_flight }
    }
}

impl<S> Layer<S> for CoalescingLayer {
    type Service = Coalescing<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Coalescing {
            inner,
            in_flight: self.in_flight.clone(),
        }
    }
}

/// The service [`CoalescingLayer`] makes.
#[derive(Clone, Debug)]
pub(crate) struct Coalescing<S> {
    inner: S,
    in_flight: InFlight,
}

impl<S, Req, B> Service<Req> for Coalescing<S>
where
    S: Service<Req, Response = http::Response<B>>,
    S::Future: Unpin,
{
    type Response = http::Response<SmallFrames<B>>;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        Answer {
            entered: Some(self.in_flight.enter()),
            inner: self.inner.call(request),
        }
    }
}

/// A request being answered: in flight until its response is ready (or it is dropped).
#[derive(Debug)]
pub(crate) struct Answer<F> {
    inner: F,
    entered: Option<Entered>,
}

impl<F, B, E> Future for Answer<F>
where
    F: Future<Output = Result<http::Response<B>, E>> + Unpin,
{
    type Output = Result<http::Response<SmallFrames<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answered = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(answered) => answered,
            Poll::Pending => return Poll::Pending,
        };
        // Counted out before the answer is handed to h2, so that the write carrying the last
        // pending answer is not held.
        self.entered = None;
        Poll::Ready(answered.map(|response| response.map(SmallFrames::new)))
    }
}

// === CoalescedWrites ===

/// An accepted connection whose writes wait one turn of the scheduler while other requests
/// are in flight.
#[derive(Debug)]
pub(crate) struct CoalescedWrites<T> {
    inner: T,
    in_flight: InFlight,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing written since the last flush: the next write may wait one turn.
    Idle,
    /// The write waited one turn: the next one goes to the socket.
    Yielded,
    /// Writing: the rest of this flush goes straight to the socket.
    Writing,
}

impl<T> CoalescedWrites<T> {
    pub(crate) fn new(inner: T, in_flight: InFlight) -> Self {
        Self {
            inner,
            in_flight,
            state: State::Idle,
        }
    }

    /// `Some(Pending)` when this write should wait one turn; the task is woken at once.
    fn hold(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<usize>>> {
        if self.state == State::Idle && self.in_flight.any() {
            self.state = State::Yielded;
            cx.waker().wake_by_ref();
            return Some(Poll::Pending);
        }
        self.state = State::Writing;
        None
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescedWrites<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(held) = self.hold(cx) {
            return held;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(held) = self.hold(cx) {
            return held;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.state = State::Idle;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: Connected> Connected for CoalescedWrites<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use bytes::Bytes;
    use http_body::Body as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wakes() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        (wakes, waker)
    }

    fn pair(in_flight: &InFlight) -> (CoalescedWrites<DuplexStream>, DuplexStream) {
        let (near, far) = tokio::io::duplex(64 * 1024);
        (CoalescedWrites::new(near, in_flight.clone()), far)
    }

    /// What the far end has received so far.
    async fn received(far: &mut DuplexStream) -> Vec<u8> {
        let mut buf = vec![0; 1024];
        let n = tokio::time::timeout(core::time::Duration::from_millis(100), far.read(&mut buf))
            .await
            .map_or(0, Result::unwrap);
        buf.truncate(n);
        buf
    }

    #[tokio::test]
    async fn with_other_answers_pending_the_first_write_of_a_flush_waits_one_turn() {
        let in_flight = InFlight::default();
        let (mut io, mut far) = pair(&in_flight);
        let (wakes, waker) = wakes();
        let mut cx = Context::from_waker(&waker);
        let pending = in_flight.enter();

        // First write: held, the task woken at once, nothing sent.
        assert!(Pin::new(&mut io).poll_write(&mut cx, b"one").is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        // Polled again: it goes out, and so does the rest of this flush.
        assert!(matches!(
            Pin::new(&mut io).poll_write(&mut cx, b"one"),
            Poll::Ready(Ok(3))
        ));
        assert!(matches!(
            Pin::new(&mut io).poll_write(&mut cx, b"two"),
            Poll::Ready(Ok(3))
        ));
        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_ready());
        assert_eq!(received(&mut far).await, b"onetwo");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);

        // After the flush, the next write waits one turn again; vectored writes too.
        let slices = [IoSlice::new(b"thr"), IoSlice::new(b"ee")];
        assert!(
            Pin::new(&mut io)
                .poll_write_vectored(&mut cx, &slices)
                .is_pending()
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        assert!(matches!(
            Pin::new(&mut io).poll_write_vectored(&mut cx, &slices),
            Poll::Ready(Ok(5))
        ));
        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_ready());
        assert_eq!(received(&mut far).await, b"three");
        drop(pending);
    }

    #[tokio::test]
    async fn with_nothing_else_pending_a_write_is_not_held() {
        let in_flight = InFlight::default();
        let (mut io, mut far) = pair(&in_flight);
        let (wakes, waker) = wakes();
        let mut cx = Context::from_waker(&waker);

        assert!(matches!(
            Pin::new(&mut io).poll_write(&mut cx, b"alone"),
            Poll::Ready(Ok(5))
        ));
        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_ready());
        assert_eq!(received(&mut far).await, b"alone");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn writers_make_progress_and_shutdown_is_not_held() {
        let in_flight = InFlight::default();
        let _pending = in_flight.enter();
        let (mut io, mut far) = pair(&in_flight);
        for round in 0..3u8 {
            io.write_all(&[round; 3000]).await.unwrap();
            io.flush().await.unwrap();
        }
        io.shutdown().await.unwrap();
        let mut all = Vec::new();
        far.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len(), 9000);
        assert!(all[..3000].iter().all(|&b| b == 0) && all[6000..].iter().all(|&b| b == 2));
    }

    #[tokio::test]
    async fn reads_pass_through() {
        let (mut io, mut far) = pair(&InFlight::default());
        far.write_all(b"request").await.unwrap();
        let mut buf = [0; 7];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"request");
        assert_eq!(io.is_write_vectored(), far.is_write_vectored());
    }

    type Full = http_body_util::Full<Bytes>;
    type Answered = Result<http::Response<Full>, std::convert::Infallible>;
    type AnswerFuture = Pin<Box<dyn Future<Output = Answered> + Send>>;

    /// A service answering when `release` is sent.
    fn service(
        release: tokio::sync::oneshot::Receiver<()>,
    ) -> impl Service<
        (),
        Response = http::Response<Full>,
        Error = std::convert::Infallible,
        Future = AnswerFuture,
    > {
        let release = std::sync::Mutex::new(Some(release));
        tower::service_fn(move |()| {
            let release = release.lock().unwrap().take();
            Box::pin(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                Ok(http::Response::new(Full::new(Bytes::from(vec![9; 600]))))
            }) as AnswerFuture
        })
    }

    #[tokio::test]
    async fn a_request_is_in_flight_until_its_answer_is_ready_and_the_answer_is_cut() {
        let in_flight = InFlight::default();
        let (release, released) = tokio::sync::oneshot::channel();
        let mut svc = CoalescingLayer::new(in_flight.clone()).layer(service(released));

        let answer = svc.call(());
        assert!(in_flight.any(), "counted from the call");
        let answer = tokio::spawn(answer);
        tokio::task::yield_now().await;
        assert!(in_flight.any(), "still being answered");
        release.send(()).unwrap();
        let response = answer.await.unwrap().unwrap();
        assert!(!in_flight.any(), "counted out once answered");

        let mut body = response.into_body();
        assert_eq!(body.size_hint().exact(), Some(600));
        let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            first.data_ref().map(Bytes::len),
            Some(crate::frames::MAX_DATA_FRAME)
        );
    }

    #[tokio::test]
    async fn a_dropped_request_is_counted_out() {
        let in_flight = InFlight::default();
        let (_release, released) = tokio::sync::oneshot::channel();
        let mut svc = CoalescingLayer::new(in_flight.clone()).layer(service(released));
        let answer = svc.call(());
        assert!(in_flight.any());
        drop(answer);
        assert!(!in_flight.any());
    }
}
