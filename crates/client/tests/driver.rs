//! The certify loop under injected time: renewal at the refresh point under traffic, CA
//! outages, expiry, and responses that must never be installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meshid_client::tls::{ClientAuth, client_config, server_config};
use meshid_client::{
    CertifyResponse, Client, ConfigProblem, Error, LocalCertifier, Metrics, State, TokenProblem,
};
use meshid_policy::{Clock, TokioClock};
use meshid_rotation::{RefreshPolicy, SeededJitter};
use rustls::pki_types::ServerName;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;
use tokio_rustls::{TlsAcceptor, TlsConnector};

type ClientStream = tokio_rustls::client::TlsStream<DuplexStream>;
type ServerStream = tokio_rustls::server::TlsStream<DuplexStream>;

/// An in-memory mTLS connection: (client side, server side). No sockets, so paused time only
/// advances when every task waits on a timer.
async fn handshake(
    client: rustls::ClientConfig,
    server: rustls::ServerConfig,
) -> Result<(ClientStream, ServerStream), String> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from("peer.invalid").unwrap();
    let accept = TlsAcceptor::from(Arc::new(server)).accept(b);
    let connect = TlsConnector::from(Arc::new(client)).connect(name, a);
    let (server, client) = tokio::join!(accept, connect);
    match (client, server) {
        (Ok(c), Ok(s)) => Ok((c, s)),
        (c, s) => Err(format!("client: {:?}; server: {:?}", c.err(), s.err())),
    }
}

/// The serial of the certificate the server presented on this connection.
fn server_serial(conn: &ClientStream) -> Vec<u8> {
    serial(conn.get_ref().1.peer_certificates().unwrap()[0].as_ref())
}

async fn ping(client: &mut ClientStream, server: &mut ServerStream) {
    client.write_all(b"ping").await.unwrap();
    client.flush().await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

async fn wait_ready(state: &mut tokio::sync::watch::Receiver<State>) {
    state
        .wait_for(|s| matches!(s, State::Ready { .. }))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn renews_at_the_refresh_point_under_traffic() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let client = local_client(&pki, EMOJI, clock);
    let server_creds = client.credentials();
    let mut web = local_client(&pki, WEB, clock);
    web.certify_once().await.unwrap();
    let mut state = server_creds.state();
    let (stop, stopped) = oneshot::channel::<()>();
    let driver = tokio::spawn(client.run(async {
        let _ = stopped.await;
    }));
    wait_ready(&mut state).await;
    let (not_before, not_after) = server_creds.validity().unwrap();
    // The same seeded jitter the client drew from: the first refresh point.
    let expected_refresh = RefreshPolicy::default()
        .refresh_at(
            not_before,
            not_after,
            clock.now(),
            &mut SeededJitter::new(7),
        )
        .unwrap();
    assert!(expected_refresh > not_before + Duration::from_secs(15 * 3600));
    assert!(expected_refresh < not_before + Duration::from_secs(18 * 3600));

    let server_cfg =
        || server_config(Arc::clone(&server_creds), ClientAuth::Required, clock).unwrap();
    let client_cfg = || client_config(web.credentials(), EMOJI, clock).unwrap();
    let (mut established_c, mut established_s) =
        handshake(client_cfg(), server_cfg()).await.unwrap();
    let first_serial = server_serial(&established_c);
    let first_key = public_key(server_creds.certified_key().unwrap().cert[0].as_ref());

    // Just before the refresh point: the same certificate.
    tokio::time::sleep_until(
        tokio::time::Instant::now()
            + Duration::try_from(expected_refresh - clock.now() - time::Duration::SECOND).unwrap(),
    )
    .await;
    let (c, _s) = handshake(client_cfg(), server_cfg()).await.unwrap();
    assert_eq!(server_serial(&c), first_serial);

    // The renewal comes at the refresh point, not later: paused time stands still while the
    // driver certifies, so the clock read once the new certificate is installed says when the
    // renewal happened (tokio's timers have millisecond resolution).
    let mut state = server_creds.state();
    state
        .wait_for(|s| matches!(s, State::Ready { not_after: n, .. } if *n > not_after))
        .await
        .unwrap();
    let renewed_at = clock.now();
    assert!(
        renewed_at >= expected_refresh
            && renewed_at <= expected_refresh + time::Duration::milliseconds(2),
        "renewed at {renewed_at}, the refresh point is {expected_refresh}"
    );

    // After it: a new certificate with a new serial and a new key.
    let (c, _s) = handshake(client_cfg(), server_cfg()).await.unwrap();
    assert_ne!(
        server_serial(&c),
        first_serial,
        "new handshakes present the new certificate"
    );
    let second_key = public_key(server_creds.certified_key().unwrap().cert[0].as_ref());
    assert_ne!(second_key, first_key, "rekeyed on renewal");

    // The connection established before the swap keeps working.
    ping(&mut established_c, &mut established_s).await;

    stop.send(()).unwrap();
    driver.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_rekey_the_key_is_kept() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let mut cfg = config(WEB, &pki.bundle);
    cfg.rekey = false;
    let mut client =
        Client::new(cfg, LocalCertifier::new(Arc::clone(&pki.ca), clock), clock).unwrap();
    client.certify_once().await.unwrap();
    let first = client.credentials().certified_key().unwrap();
    client.certify_once().await.unwrap();
    let second = client.credentials().certified_key().unwrap();
    assert_ne!(
        serial(first.cert[0].as_ref()),
        serial(second.cert[0].as_ref())
    );
    assert_eq!(
        public_key(first.cert[0].as_ref()),
        public_key(second.cert[0].as_ref())
    );
}

#[tokio::test(start_paused = true)]
async fn a_ca_outage_backs_off_keeps_serving_and_recovers() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let flaky = Arc::new(Flaky::new(
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        clock,
    ));
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let client = Client::new(config(WEB, &pki.bundle), Arc::clone(&flaky), clock)
        .unwrap()
        .with_jitter(SeededJitter::new(11))
        .with_metrics(metrics);
    let creds = client.credentials();
    let mut state = creds.state();
    let (stop, stopped) = oneshot::channel::<()>();
    let driver = tokio::spawn(client.run(async {
        let _ = stopped.await;
    }));
    wait_ready(&mut state).await;
    let (_, not_after) = creds.validity().unwrap();
    let serving = creds.certified_key().unwrap();

    // The CA goes away; time passes the refresh point and keeps going for 5 hours.
    flaky.set_failing(true);
    let failures_from = flaky.calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(22 * 3600)).await;
    let attempts: Vec<_> = flaky.attempts.lock().unwrap()[failures_from..].to_vec();
    assert!(
        attempts.len() >= 5,
        "retries during the outage: {}",
        attempts.len()
    );
    for pair in attempts.windows(2) {
        let gap = pair[1] - pair[0];
        let remaining: time::Duration = not_after - pair[0];
        let cap: time::Duration = (remaining / 4_i32).min(time::Duration::minutes(5));
        assert!(
            gap <= cap + time::Duration::SECOND,
            "gap {gap} above cap {cap}"
        );
        assert!(pair[1] < not_after, "a retry is always before expiry");
    }
    // Still serving the same certificate.
    assert!(Arc::ptr_eq(&serving, &creds.certified_key().unwrap()));
    assert!(matches!(creds.current_state(), State::Ready { .. }));

    // The CA returns: the next attempt succeeds.
    flaky.set_failing(false);
    tokio::time::sleep(Duration::from_secs(6 * 60)).await;
    assert!(
        !Arc::ptr_eq(&serving, &creds.certified_key().unwrap()),
        "renewed after recovery"
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("identity_cert_refreshes_total{result=\"error\"}"),
        "{text}"
    );
    assert!(
        text.contains("identity_cert_refreshes_total{result=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("identity_cert_expiration_timestamp_seconds"),
        "{text}"
    );
    assert!(
        text.contains("identity_cert_refresh_timestamp_seconds"),
        "{text}"
    );

    stop.send(()).unwrap();
    driver.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn past_expiry_the_state_is_expired_and_handshakes_fail_closed() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let flaky = Arc::new(Flaky::new(
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        clock,
    ));
    let client = Client::new(config(EMOJI, &pki.bundle), Arc::clone(&flaky), clock)
        .unwrap()
        .with_jitter(SeededJitter::new(3));
    let creds = client.credentials();
    let mut web = local_client(&pki, WEB, clock);
    web.certify_once().await.unwrap();
    let mut state = creds.state();
    let (stop, stopped) = oneshot::channel::<()>();
    let driver = tokio::spawn(client.run(async {
        let _ = stopped.await;
    }));
    wait_ready(&mut state).await;
    let (_, not_after) = creds.validity().unwrap();
    flaky.set_failing(true);
    tokio::time::sleep(
        Duration::try_from(not_after - clock.now()).unwrap() + Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        creds.current_state(),
        State::Expired {
            identity: EMOJI.to_owned(),
            expired_at: not_after
        }
    );
    assert!(creds.certified_key().is_none());
    // A server with no certificate aborts every handshake: it fails closed. The web client is
    // still valid (its certificate is a day newer... no: same age) — make it fresh first.
    web.certify_once().await.unwrap();
    let err = handshake(
        client_config(web.credentials(), EMOJI, clock).unwrap(),
        server_config(Arc::clone(&creds), ClientAuth::Required, clock).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("server: Some("), "{err}");

    // Attempts continue after expiry, at the no-certificate backoff: capped at 60s, never a
    // tight loop. Full jitter over [100ms, 60s] averages 30s, some 20 calls in 10 minutes; the
    // seed is fixed, so the count is too.
    let before = flaky.calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(600)).await;
    let attempts: Vec<_> = flaky.attempts.lock().unwrap()[before..].to_vec();
    assert!(
        (10..=30).contains(&attempts.len()),
        "{} attempts in 10 minutes after expiry",
        attempts.len()
    );
    for pair in attempts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= time::Duration::milliseconds(100)
                && gap <= time::Duration::seconds(60) + time::Duration::milliseconds(1),
            "{pair:?}"
        );
    }
    flaky.set_failing(false);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(matches!(creds.current_state(), State::Ready { .. }));

    stop.send(()).unwrap();
    driver.await.unwrap();
}

/// The times of the attempts a client failing from the start makes in its first hour, under
/// paused time, with `jitter`.
async fn attempts_in_the_first_hour(
    jitter: impl meshid_rotation::JitterSource + Send + 'static,
) -> Vec<time::OffsetDateTime> {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let flaky = Arc::new(Flaky::new(
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        clock,
    ));
    flaky.set_failing(true);
    let client = Client::new(config(WEB, &pki.bundle), Arc::clone(&flaky), clock)
        .unwrap()
        .with_jitter(jitter);
    let (stop, stopped) = oneshot::channel::<()>();
    let driver = tokio::spawn(client.run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    stop.send(()).unwrap();
    driver.await.unwrap();
    let attempts = flaky.attempts.lock().unwrap().clone();
    assert_eq!(
        attempts.first(),
        Some(&START),
        "the first attempt is at once"
    );
    attempts
}

/// The gaps between attempts, in whole milliseconds (tokio's timer resolution).
fn gaps_ms(attempts: &[time::OffsetDateTime]) -> Vec<i128> {
    attempts
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).whole_milliseconds())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_first_certificate_is_retried_with_backoff_from_one_second() {
    // Jitter at the top of its window: each delay is its ceiling, 1s, 2s, 4s ... capped at 60s.
    let attempts = attempts_in_the_first_hour(|| 1.0).await;
    let gaps = gaps_ms(&attempts);
    let want: Vec<i128> = [1, 2, 4, 8, 16, 32]
        .into_iter()
        .chain(core::iter::repeat(60))
        .take(gaps.len())
        .map(|s| s * 1000)
        .collect();
    for (i, (gap, want)) in gaps.iter().zip(&want).enumerate() {
        assert!(
            (want - 1..=want + 1).contains(gap),
            "retry {i}: {gap}ms, want {want}ms; the first gaps: {:?}",
            &gaps[..gaps.len().min(12)]
        );
    }
    // 0, 1, 3, 7, 15, 31, 63s, then every 60s up to 3543s: 65 attempts.
    assert_eq!(attempts.len(), 65, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_delays_are_drawn_from_the_clients_jitter() {
    // The same seeded jitter, drawn by the backoff alone: the driver sleeps exactly the delays
    // it hands out (full jitter below the doubling ceiling), not a fixed or a zero interval.
    let attempts = attempts_in_the_first_hour(SeededJitter::new(5)).await;
    let gaps = gaps_ms(&attempts);
    let mut backoff = meshid_rotation::Backoff::default();
    let mut jitter = SeededJitter::new(5);
    let want: Vec<i128> = gaps
        .iter()
        .map(|_| {
            let delay = backoff.next_delay(START, None, &mut jitter);
            i128::try_from(delay.as_millis()).unwrap()
        })
        .collect();
    for (i, (gap, want)) in gaps.iter().zip(&want).enumerate() {
        assert!(
            (want - 1..=want + 1).contains(gap),
            "retry {i}: {gap}ms, want {want}ms; the first gaps: {:?}",
            &gaps[..gaps.len().min(12)]
        );
    }
    // The delays before the cap are below their ceilings: jitter is drawn, not the ceiling.
    assert!(gaps[..6].iter().sum::<i128>() < 63_000, "{gaps:?}");
    assert!(attempts.len() > 65, "{} attempts", attempts.len());
}

#[tokio::test(start_paused = true)]
async fn invalid_responses_are_never_installed() {
    let pki = Pki::new();
    let other = Pki::new();
    let clock = TokioClock::new(START);

    // A genuine leaf for another identity, from the same CA.
    let mut emoji = local_client(&pki, EMOJI, clock);
    emoji.certify_once().await.unwrap();
    let emoji_chain = emoji.credentials().certified_key().unwrap().cert.clone();
    // A leaf from another mesh's CA.
    let mut stranger = local_client(&other, WEB, clock);
    stranger.certify_once().await.unwrap();
    let stranger_chain = stranger.credentials().certified_key().unwrap().cert.clone();

    let cases: Vec<(&str, CertifyResponse, String)> = vec![
        (
            "wrong identity",
            CertifyResponse::new(emoji_chain[0].clone(), emoji_chain[1..].to_vec(), Some(START + Duration::from_secs(86_420))),
            format!("refused the CA's response: the certificate does not name the local identity {WEB}: found [{EMOJI}]"),
        ),
        (
            "unknown anchor",
            CertifyResponse::new(stranger_chain[0].clone(), stranger_chain[1..].to_vec(), Some(START + Duration::from_secs(86_420))),
            "refused the CA's response: the certificate chain does not verify: certificate chain rejected: a signature does not verify with its issuer's key (bad signature)".to_owned(),
        ),
        (
            "missing valid_until",
            CertifyResponse::new(emoji_chain[0].clone(), emoji_chain[1..].to_vec(), None),
            "refused the CA's response: identity certification missing expiration".to_owned(),
        ),
        (
            "expired",
            CertifyResponse::new(emoji_chain[0].clone(), emoji_chain[1..].to_vec(), Some(START - Duration::from_secs(1))),
            "refused the CA's response: identity certification expired: valid_until 2026-06-01T11:59:59Z is not after now 2026-06-01T12:00:00Z".to_owned(),
        ),
    ];
    for (name, response, want) in cases {
        let response = Arc::new(response);
        let certifier = Scripted(move |_| Ok((*response).clone()));
        let mut client = Client::new(config(WEB, &pki.bundle), certifier, clock).unwrap();
        let err = client.certify_once().await.unwrap_err();
        assert_eq!(err.to_string(), want, "{name}");
        // The reason is typed, so a caller can tell an anchor problem from a CA mix-up.
        let Error::InvalidResponse { reason } = &err else {
            panic!("{name}: {err:?}");
        };
        let kind = match reason {
            meshid_client::ResponseProblem::WrongIdentity { expected, .. } => {
                assert_eq!(expected, WEB);
                "wrong identity"
            }
            meshid_client::ResponseProblem::ChainDoesNotVerify(_) => "unknown anchor",
            meshid_client::ResponseProblem::MissingExpiration => "missing valid_until",
            meshid_client::ResponseProblem::Expired { .. } => "expired",
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(kind, name);
        assert!(
            client.credentials().certified_key().is_none(),
            "{name}: installed"
        );
        assert_eq!(
            client.credentials().current_state(),
            State::Pending,
            "{name}"
        );
    }

    // A leaf that expired: the CA's clock was a day and a half behind.
    let late = TokioClock::new(START + Duration::from_secs(36 * 3600));
    let mut client = Client::new(
        config(WEB, &pki.bundle),
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        late,
    )
    .unwrap();
    let err = client.certify_once().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("refused the CA's response: identity certification expired"),
        "{err}"
    );
}

#[tokio::test]
async fn an_empty_token_is_never_sent() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let dir = tempfile::Builder::new()
        .prefix("meshid-token-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, b"\n").unwrap();
    let flaky = Arc::new(Flaky::new(
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        clock,
    ));
    let mut cfg = config(WEB, &pki.bundle);
    cfg.token = meshid_client::TokenSource::File(path.clone());
    let mut client = Client::new(cfg, Arc::clone(&flaky), clock).unwrap();
    let err = client.certify_once().await.unwrap_err();
    assert_eq!(err.to_string(), "ServiceAccount token: the token is empty");
    assert!(matches!(
        err,
        Error::Token {
            reason: TokenProblem::Empty
        }
    ));
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 0);
    // The file is re-read on every attempt: a rotated token is picked up.
    std::fs::write(&path, b"eyJhbGciOi.rotated\n").unwrap();
    client.certify_once().await.unwrap();

    // A token file that is not there (not mounted yet): the error kind says so.
    std::fs::remove_file(&path).unwrap();
    let err = client.certify_once().await.unwrap_err();
    let Error::Token {
        reason:
            TokenProblem::Unreadable {
                path: read,
                kind,
                reason,
            },
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*read, path);
    assert_eq!(*kind, std::io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!(
            "ServiceAccount token: cannot read {}: {reason}",
            path.display()
        )
    );
}

#[test]
fn a_csr_without_the_local_identity_is_refused() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let mut cfg = config(WEB, &pki.bundle);
    cfg.csr =
        meshid_csr::CsrParams::new("other.emojivoto.serviceaccount.identity.linkerd.cluster.local");
    let Err(err) = Client::new(cfg, LocalCertifier::new(Arc::clone(&pki.ca), clock), clock) else {
        panic!("a CSR without the local identity was accepted");
    };
    let Error::Config {
        reason: ConfigProblem::IdentityNotRequested { identity },
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(identity, WEB);
    assert_eq!(
        err.to_string(),
        format!(
            "invalid client configuration: the CSR does not request the local identity {WEB} \
             among its SANs"
        )
    );

    let mut cfg = config(WEB, &pki.bundle);
    cfg.refresh = RefreshPolicy::new(2.0, 0.0);
    let Err(err) = Client::new(
        cfg.clone(),
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        clock,
    ) else {
        panic!("an invalid refresh policy was accepted");
    };
    let Error::Config {
        reason: ConfigProblem::Refresh(cause),
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(Err(cause.clone()), cfg.refresh.validate());
    assert_eq!(
        err.to_string(),
        format!("invalid client configuration: {cause}")
    );
}

#[test]
fn an_invalid_backoff_or_a_nameless_service_account_is_refused() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let mut cfg = config(WEB, &pki.bundle);
    cfg.backoff.initial = Duration::ZERO;
    let Err(err) = Client::new(
        cfg.clone(),
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        clock,
    ) else {
        panic!("an invalid backoff policy was accepted");
    };
    let Error::Config {
        reason: ConfigProblem::Backoff(cause),
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(Err(cause.clone()), cfg.backoff.validate());
    assert_eq!(
        err.to_string(),
        format!("invalid client configuration: {cause}")
    );

    // A ServiceAccount whose identity name would be longer than a DNS name may be.
    let label = "a".repeat(60);
    let long = [label.as_str(); 4].join(".");
    let sa = meshid_policy::ServiceAccount::new(&"n".repeat(63), &long).unwrap();
    let mesh = meshid_policy::Mesh::default();
    let Err(err) = meshid_client::ClientConfig::for_service_account(
        &mesh,
        &sa,
        meshid_policy::SanMode::Dns,
        meshid_client::TokenSource::Fixed(zeroize::Zeroizing::new(b"t".to_vec())),
        pki.bundle,
    ) else {
        panic!("an identity name longer than a DNS name was accepted");
    };
    let Error::Config {
        reason: ConfigProblem::Identity(cause),
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(Err(cause.clone()), mesh.identity(&sa).map(|_| ()));
    assert_eq!(
        err.to_string(),
        format!("invalid client configuration: {cause}")
    );
}

#[tokio::test]
async fn a_new_trust_bundle_is_taken_without_losing_the_certificate() {
    let pki = Pki::new();
    let other = Pki::new();
    let clock = TokioClock::new(START);
    let mut web = local_client(&pki, WEB, clock);
    web.certify_once().await.unwrap();
    let creds = web.credentials();
    let before = creds.certified_key().unwrap();
    creds.set_trust_bundle(pki.bundle.union(&other.bundle));
    assert_eq!(creds.trust_bundle().len(), 2);
    assert!(Arc::ptr_eq(&before, &creds.certified_key().unwrap()));
}
