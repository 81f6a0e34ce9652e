//! Response bodies cut into small DATA frames, so that h2 batches them.
//!
//! h2's frame writer copies a DATA payload shorter than 256 bytes into its write buffer, but
//! keeps a longer one aside and writes it (with whatever was buffered before it) in a
//! system call of its own before it accepts any other frame. A Certify answer is about
//! 1,050 bytes (leaf and issuer), so each one cost two writes on the socket: headers and
//! data, then the 10-byte trailers, and answers to the other streams of the connection could
//! not share a write either. Cutting the body into pieces below the threshold lets h2 buffer
//! the whole answer, and the answers that are ready together, into one write.
//!
//! This changes only how the bytes are framed: HTTP/2 and gRPC allow a message to span any
//! number of DATA frames.

use core::pin::Pin;
use core::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};

/// Below h2's threshold for keeping a payload out of its write buffer (256 bytes when the
/// transport writes vectored, as TCP and TLS streams do).
pub(crate) const MAX_DATA_FRAME: usize = 255;

/// A body whose DATA frames are at most [`MAX_DATA_FRAME`] bytes: longer ones from the inner
/// body are cut, without copying, into consecutive pieces.
#[derive(Debug)]
pub(crate) struct SmallFrames<B> {
    inner: B,
    rest: Bytes,
}

impl<B> SmallFrames<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            rest: Bytes::new(),
        }
    }
}

impl<B> Body for SmallFrames<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.rest.is_empty() {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.rest = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return other,
            }
        }
        let n = this.rest.len().min(MAX_DATA_FRAME);
        Poll::Ready(Some(Ok(Frame::data(this.rest.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.remaining() as u64;
        let mut hint = SizeHint::new();
        // Upper first: a lower bound above the current upper one would be refused.
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint.set_lower(inner.lower().saturating_add(rest));
        hint
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    type Frames = Vec<Result<Frame<Bytes>, std::convert::Infallible>>;

    fn body(frames: Frames) -> impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        SmallFrames::new(StreamBody::new(tokio_stream::iter(frames)))
    }

    fn trailers() -> http::HeaderMap {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        trailers
    }

    async fn collect_frames<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Vec<Frame<Bytes>>
    where
        B::Error: core::fmt::Debug,
    {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(frame.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_long_data_frame_is_cut_into_pieces_below_the_threshold_without_losing_a_byte() {
        let payload: Vec<u8> = (0..1_061u32).map(|i| (i % 251) as u8).collect();
        let frames = collect_frames(body(vec![
            Ok(Frame::data(Bytes::from(payload.clone()))),
            Ok(Frame::trailers(trailers())),
        ]))
        .await;

        let sizes: Vec<usize> = frames
            .iter()
            .filter_map(|f| f.data_ref().map(Bytes::len))
            .collect();
        assert_eq!(sizes, vec![255, 255, 255, 255, 41]);
        let joined: Vec<u8> = frames
            .iter()
            .filter_map(|f| f.data_ref())
            .flat_map(|d| d.iter().copied())
            .collect();
        assert_eq!(joined, payload);
        // The trailers come last, unchanged.
        assert_eq!(
            frames.last().and_then(Frame::trailers_ref),
            Some(&trailers())
        );
        assert_eq!(frames.len(), 6);
    }

    #[tokio::test]
    async fn short_and_empty_frames_pass_unchanged() {
        let frames = collect_frames(body(vec![
            Ok(Frame::data(Bytes::from_static(b"short"))),
            Ok(Frame::data(Bytes::new())),
            Ok(Frame::data(Bytes::from(vec![7; MAX_DATA_FRAME]))),
        ]))
        .await;
        let sizes: Vec<usize> = frames
            .iter()
            .filter_map(|f| f.data_ref().map(Bytes::len))
            .collect();
        assert_eq!(sizes, vec![5, 0, MAX_DATA_FRAME]);
    }

    #[tokio::test]
    async fn the_end_and_the_size_count_the_pieces_not_yet_sent() {
        let full = http_body_util::Full::new(Bytes::from(vec![1; 600]));
        let mut body = SmallFrames::new(full);
        assert_eq!(body.size_hint().exact(), Some(600));
        assert!(!body.is_end_stream());

        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.data_ref().map(Bytes::len), Some(MAX_DATA_FRAME));
        // The inner body is done, but 345 bytes are still to come.
        assert!(!body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(345));

        let second = body.frame().await.unwrap().unwrap();
        assert_eq!(second.data_ref().map(Bytes::len), Some(MAX_DATA_FRAME));
        assert_eq!(body.size_hint().exact(), Some(90));
        let last = body.frame().await.unwrap().unwrap();
        assert_eq!(last.data_ref().map(Bytes::len), Some(90));
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }
}
