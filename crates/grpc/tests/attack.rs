//! The Certify server attacked over HTTP/2 as an attacker would, on loopback: too many
//! streams, malformed requests the server must reset, a rapid-reset flood, an oversized
//! message, a peer that stops answering. Frames a well-behaved client would not send are
//! written by hand (`support::raw`). Each test asserts protocol outcomes (SETTINGS,
//! RST_STREAM, GOAWAY and their codes, gRPC statuses) and that the service still certifies
//! afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;
use std::collections::HashSet;

use bytes::Bytes;
use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use meshid_grpc::GrpcLimits;
use support::raw::{self, Frame};
use support::*;
use tokio::io::AsyncWriteExt as _;
use tonic::Code;
use tonic::transport::Channel;

/// Generous: a bound on a test that would otherwise hang, not a performance assertion.
const PATIENCE: Duration = Duration::from_secs(10);

fn web_request() -> CertifyRequest {
    CertifyRequest {
        identity: WEB_ID.to_owned(),
        token: WEB_TOKEN.to_vec(),
        certificate_signing_request: web_csr(),
    }
}

async fn client(server: &Server) -> IdentityClient<Channel> {
    IdentityClient::connect(server.http_uri()).await.unwrap()
}

/// The service still certifies, on a new connection.
async fn still_certifies(server: &Server) {
    let mut client = client(server).await;
    let response = tokio::time::timeout(PATIENCE, client.certify(web_request()))
        .await
        .expect("answered")
        .expect("certified")
        .into_inner();
    assert!(response.valid_until.is_some());
}

/// What the server sent on a raw connection until it closed it.
#[derive(Debug, Default)]
struct Seen {
    resets: Vec<(u32, u32)>,
    goaway: Option<Frame>,
    closed: bool,
}

impl Seen {
    fn reset_with(&self, code: u32) -> HashSet<u32> {
        self.resets
            .iter()
            .filter(|(_, c)| *c == code)
            .map(|(stream, _)| *stream)
            .collect()
    }
}

/// Reads frames until the server closes the connection, or `done` says enough was seen.
async fn watch(read: &mut tokio::net::tcp::OwnedReadHalf, done: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    while !done(&seen) {
        match tokio::time::timeout(PATIENCE, raw::read_frame(read)).await {
            Err(_) => panic!("the server neither answered nor closed: {seen:?}"),
            Ok(None) => {
                seen.closed = true;
                break;
            }
            Ok(Some(frame)) => match frame.kind {
                raw::RST_STREAM => seen.resets.push((frame.stream, frame.error_code())),
                raw::GOAWAY => seen.goaway = Some(frame),
                _ => {}
            },
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_advertised_limit_are_refused() {
    const STREAMS: u32 = 3_000;
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let limit = GrpcLimits::default().max_concurrent_streams;

    let raw::RawConnection {
        settings,
        mut read,
        mut write,
    } = raw::connect(server.addr).await;
    // The limit is advertised ...
    assert_eq!(
        settings.setting(raw::SETTINGS_MAX_CONCURRENT_STREAMS),
        Some(limit)
    );
    assert_eq!(
        settings.setting(raw::SETTINGS_INITIAL_WINDOW_SIZE),
        Some(65_541)
    );

    // ... and enforced on a client that ignores it: 3,000 requests opened at once, none
    // finished.
    let writer = tokio::spawn(async move {
        let mut frames = Vec::new();
        for i in 0..STREAMS {
            let headers = raw::request_headers(raw::CERTIFY_PATH);
            frames.extend(raw::frame(
                raw::HEADERS,
                raw::END_HEADERS,
                2 * i + 1,
                &headers,
            ));
        }
        // The server may close the connection before it has read everything.
        let _ = write.write_all(&frames).await;
        write
    });
    let seen = watch(&mut read, |seen| {
        seen.reset_with(raw::REFUSED_STREAM).len() as u32 >= STREAMS - limit
    })
    .await;

    let refused = seen.reset_with(raw::REFUSED_STREAM);
    assert!(!refused.is_empty(), "no stream refused: {seen:?}");
    // The streams the server took: those up to the last it processed, less those it refused.
    let last = seen
        .goaway
        .as_ref()
        .map_or(2 * STREAMS - 1, Frame::last_stream_id);
    let taken = (0..STREAMS)
        .map(|i| 2 * i + 1)
        .filter(|id| *id <= last && !refused.contains(id))
        .count();
    assert!(
        taken <= limit as usize,
        "{taken} streams taken, limit {limit}"
    );
    // Refusals count as resets the client caused: the connection is sent away before the end.
    let goaway = seen.goaway.as_ref().expect("GOAWAY");
    assert_eq!(goaway.error_code(), raw::ENHANCE_YOUR_CALM);
    drop(writer.await.unwrap());

    still_certifies(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_the_server_must_reset_end_in_goaway_before_the_last() {
    const REQUESTS: u32 = 5_000;
    // Sent in batches that stay below the stream limit, each once the last one was reset, so
    // that every stream is reset for being malformed, not refused.
    const BATCH: u32 = 50;
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let limit = GrpcLimits::default().max_local_error_resets;

    let raw::RawConnection {
        mut read,
        mut write,
        ..
    } = raw::connect(server.addr).await;
    // Requests without :method (RFC 9113 §8.1.1): each one makes the server reset its
    // stream, the work CVE-2025-8671 ("MadeYouReset") makes a server do without limit.
    let mut seen = Seen::default();
    let mut sent = 0;
    while sent < REQUESTS && seen.goaway.is_none() && !seen.closed {
        let mut frames = Vec::new();
        for i in sent..sent + BATCH {
            frames.extend(raw::frame(
                raw::HEADERS,
                raw::END_HEADERS | raw::END_STREAM,
                2 * i + 1,
                &raw::malformed_headers(),
            ));
        }
        if write.write_all(&frames).await.is_err() {
            break;
        }
        sent += BATCH;
        let batch = watch(&mut read, |batch| {
            batch.resets.len() as u32 >= BATCH || batch.goaway.is_some()
        })
        .await;
        seen.resets.extend(batch.resets);
        seen.goaway = batch.goaway;
        seen.closed = batch.closed;
    }

    let resets = seen.reset_with(raw::PROTOCOL_ERROR).len();
    assert_eq!(
        resets,
        seen.resets.len(),
        "a stream was reset for another reason"
    );
    // The last batch's resets may be cut short by the GOAWAY.
    assert!(
        (limit - BATCH as usize..=limit).contains(&resets),
        "{resets} resets, limit {limit}"
    );
    let goaway = seen
        .goaway
        .as_ref()
        .expect("GOAWAY before the last request");
    assert_eq!(goaway.error_code(), raw::ENHANCE_YOUR_CALM);
    assert!(sent < REQUESTS, "all {REQUESTS} requests were sent");

    still_certifies(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_does_not_hold_up_a_request_on_another_connection() {
    const BATCH: u32 = 500;
    const BATCHES: u32 = 100;
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    // The well-formed request's connection is up, and has certified once.
    let mut client = client(&server).await;
    client.certify(web_request()).await.unwrap();
    let request = web_request();

    // HEADERS + RST_STREAM pairs (CVE-2023-44487) as fast as the connection takes them.
    let raw::RawConnection {
        mut read,
        mut write,
        ..
    } = raw::connect(server.addr).await;
    let (started, flooding) = tokio::sync::oneshot::channel();
    let flood = tokio::spawn(async move {
        let mut started = Some(started);
        let mut stream = 1u32;
        for _ in 0..BATCHES {
            let mut frames = Vec::new();
            for _ in 0..BATCH {
                let headers = raw::request_headers(raw::CERTIFY_PATH);
                frames.extend(raw::frame(raw::HEADERS, raw::END_HEADERS, stream, &headers));
                frames.extend(raw::rst_stream(stream, raw::CANCEL));
                stream += 2;
            }
            if write.write_all(&frames).await.is_err() {
                break;
            }
            if let Some(started) = started.take() {
                let _ = started.send(());
            }
        }
        (stream - 1) / 2
    });
    let watcher = tokio::spawn(async move { watch(&mut read, |_| false).await });

    flooding.await.unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(1), client.certify(request)).await;
    assert!(
        answered.is_ok(),
        "a well-formed request waited more than 1 s during the flood"
    );
    answered.unwrap().unwrap();

    let seen = watcher.await.unwrap();
    let sent = flood.await.unwrap();
    let goaway = seen.goaway.as_ref().expect("GOAWAY");
    assert_eq!(goaway.error_code(), raw::ENHANCE_YOUR_CALM);
    assert!(
        goaway.last_stream_id() < 2 * BATCH * BATCHES,
        "the flood went on to its end ({sent} pairs sent)"
    );

    still_certifies(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_one_mebibyte_message_is_refused_as_too_large() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;

    // From tonic's client: a request carrying a 1 MiB token.
    let mut client = client(&server).await;
    let mut request = web_request();
    request.token = vec![b't'; 1024 * 1024];
    let len = prost::Message::encoded_len(&request);
    let status = client.certify(request).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(
        status.message(),
        format!(
            "Error, decoded message length too large: found {len} bytes, the limit is: 65536 bytes"
        )
    );
    assert_eq!(server.authn.calls(), 0);

    // Refused from the 5-byte prefix alone: the answer comes before the message does.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    let post = http::Request::post(format!("{}{}", server.http_uri(), raw::CERTIFY_PATH))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = h2.send_request(post, false).unwrap();
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(1024u32 * 1024).to_be_bytes());
    body.send_data(Bytes::from(prefix), false).unwrap();
    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("answered without the message")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "11"); // OUT_OF_RANGE
    assert_eq!(server.authn.calls(), 0);

    still_certifies(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let pki = Pki::new();
    let mut limits = GrpcLimits::default();
    limits.keepalive_interval = Duration::from_millis(200);
    limits.keepalive_timeout = Duration::from_millis(500);
    let server = Server::start_limited(
        pki.ca_ready(),
        None,
        tonic::transport::Server::builder(),
        limits,
    )
    .await;

    // A live peer answers three PINGs and is still connected.
    let raw::RawConnection {
        mut read,
        mut write,
        ..
    } = raw::connect(server.addr).await;
    let mut acked = 0;
    while acked < 3 {
        let frame = tokio::time::timeout(PATIENCE, raw::read_frame(&mut read))
            .await
            .expect("a PING")
            .expect("still connected");
        if frame.kind == raw::PING && frame.flags & raw::ACK == 0 {
            write
                .write_all(&raw::frame(raw::PING, raw::ACK, 0, &frame.payload))
                .await
                .unwrap();
            acked += 1;
        }
        assert_ne!(frame.kind, raw::GOAWAY, "a live peer was sent away");
    }

    // A dead one (it reads, but never answers) is dropped.
    let raw::RawConnection {
        read: mut dead,
        write: _keep_open,
        ..
    } = raw::connect(server.addr).await;
    let mut pinged = false;
    loop {
        let frame = tokio::time::timeout(PATIENCE, raw::read_frame(&mut dead))
            .await
            .expect("the dead peer was kept");
        match frame {
            None => break,
            Some(frame) => pinged |= frame.kind == raw::PING,
        }
    }
    assert!(pinged, "closed without a PING");

    still_certifies(&server).await;
    server.stop().await.unwrap();
}
