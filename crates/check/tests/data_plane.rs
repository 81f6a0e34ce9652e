//! The `linkerd-identity-data-plane` checks: proxy trust bundles compared as sets, proxy
//! leaves from files and from live TLS connections; and the JSON report.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration as StdDuration;

use meshid_check::names::*;
use meshid_check::{FailOn, PemSource, ProxyAddr, ProxyChain, Status};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use support::*;
use time::macros::datetime;

const LEAF_FROM: time::OffsetDateTime = datetime!(2026-06-01 0:00 UTC);
const LEAF_UNTIL: time::OffsetDateTime = datetime!(2026-06-02 0:00 UTC);

// === data plane proxies certificate match CA ===

#[test]
fn bundles_compare_as_certificate_sets() {
    let root = root();
    let next = root_with("next-root", 1002, Alg::P256, ROOT_FROM, ROOT_UNTIL);
    let issuer = issuer(&root);
    let mut inputs = inputs(&format!("{}{}", root.pem, next.pem), &issuer);
    // Other order, a duplicate, CRLF line endings, text around the blocks: the same set.
    let shuffled = format!(
        "# proxy bundle\r\n{}\r\n\r\n{}{}",
        next.pem.replace('\n', "\r\n"),
        root.pem,
        root.pem
    );
    inputs
        .proxy_bundles
        .push(PemSource::new("web-bundle.pem", shuffled));
    let report = run(&inputs, true);
    assert_eq!(outcome(&report, PROXIES_BUNDLE), (Status::Ok, None));
}

#[test]
fn proxy_with_an_old_bundle_warns() {
    let old = root_with("old-root", 1000, Alg::P256, ROOT_FROM, ROOT_UNTIL);
    let root = root();
    let issuer = issuer(&root);
    let mut inputs = inputs(&root.pem, &issuer);
    inputs
        .proxy_bundles
        .push(PemSource::new("web-bundle.pem", old.pem));
    inputs
        .proxy_bundles
        .push(PemSource::new("vote-bundle.pem", root.pem));
    inputs.proxy_bundles.push(PemSource::missing(
        "emoji-bundle.pem",
        "emoji-bundle.pem does not exist",
    ));
    let report = run(&inputs, true);
    assert_eq!(
        outcome(&report, PROXIES_BUNDLE),
        (
            Status::Warning,
            Some(
                "Some pods do not have the current trust bundle and must be restarted:\n\t\
                 * web-bundle.pem: lacks current anchor(s) [CN=root.linkerd.cluster.local]; \
                 has anchor(s) not in the current bundle [CN=old-root]\n\t\
                 * emoji-bundle.pem: emoji-bundle.pem does not exist"
                    .to_owned()
            )
        )
    );
    assert_eq!(
        report.check(PROXIES_BUNDLE).unwrap().hint.as_deref(),
        Some(
            "see https://linkerd.io/2/checks/#l5d-identity-data-plane-proxies-certs-match-ca for \
             hints"
        )
    );
    // Linkerd's severity: a warning, exit 0 unless warnings fail.
    assert_eq!(report.exit_code(FailOn::Error), 0);
    assert_eq!(report.exit_code(FailOn::Warning), 1);
    let table = report.render_table();
    assert!(
        table.contains("\nlinkerd-identity-data-plane\n---------------------------\n‼ data plane proxies certificate match CA\n    Some pods do not have the current trust bundle and must be restarted:\n\t* web-bundle.pem"),
        "{table}"
    );
}

#[test]
fn data_plane_checks_without_inputs_are_skipped() {
    let root = root();
    let issuer = issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), true);
    assert_eq!(
        outcome(&report, PROXIES_BUNDLE),
        (
            Status::Skipped,
            Some("no proxy trust bundle was given".to_owned())
        )
    );
    assert_eq!(
        outcome(&report, PROXIES_CHAINED),
        (
            Status::Skipped,
            Some("no proxy certificate was given".to_owned())
        )
    );
    assert_eq!(outcome(&report, PROXIES_REFRESHED).0, Status::Skipped);
    // Without --proxy there is no data-plane category at all.
    let report = run(&inputs(&root.pem, &issuer), false);
    assert!(report.check(PROXIES_BUNDLE).is_none());
}

// === proxy certificates from files ===

#[test]
fn proxy_leaf_of_the_current_issuer_passes() {
    let root = root();
    let issuer = issuer(&root);
    let leaf = leaf(&issuer, LEAF_FROM, LEAF_UNTIL);
    let mut inputs = inputs(&root.pem, &issuer);
    inputs
        .proxies
        .push(proxy_chain("web.pem", &chain_pem(&leaf, &issuer)));
    let report = run(&inputs, true);
    assert_eq!(outcome(&report, PROXIES_CHAINED), (Status::Ok, None));
    assert_eq!(outcome(&report, PROXIES_REFRESHED), (Status::Ok, None));
}

#[test]
fn proxy_leaf_from_another_ca_is_an_error() {
    let root = root();
    let issuer = issuer(&root);
    let foreign_root = root_with("foreign-root", 5, Alg::P256, ROOT_FROM, ROOT_UNTIL);
    let foreign_issuer = support::issuer(&foreign_root);
    let foreign = leaf(&foreign_issuer, LEAF_FROM, LEAF_UNTIL);
    let good = leaf(&issuer, LEAF_FROM, LEAF_UNTIL);
    let mut inputs = inputs(&root.pem, &issuer);
    inputs.proxies.push(proxy_chain(
        "foreign.pem",
        &chain_pem(&foreign, &foreign_issuer),
    ));
    inputs
        .proxies
        .push(proxy_chain("web.pem", &chain_pem(&good, &issuer)));
    inputs
        .proxies
        .push(ProxyChain::missing("gone.pem", "gone.pem does not exist"));
    let report = run(&inputs, true);
    assert_eq!(
        outcome(&report, PROXIES_CHAINED),
        (
            Status::Error,
            Some(
                "Some proxies present certificates that the current trust anchors do not \
                 accept:\n\t* foreign.pem: certificate chain rejected: no path to a trust \
                 anchor in the bundle (unknown issuer): check that the peer sends its issuer \
                 certificate and that the bundle holds the right root\n\t* gone.pem: gone.pem \
                 does not exist"
                    .to_owned()
            )
        )
    );
    // The proxy that chained is still checked for renewal.
    assert_eq!(outcome(&report, PROXIES_REFRESHED), (Status::Ok, None));
    assert_eq!(report.exit_code(FailOn::Error), 1);
}

#[test]
fn expired_proxy_leaf_is_an_error() {
    let root = root();
    let issuer = issuer(&root);
    let leaf = leaf(
        &issuer,
        datetime!(2026-05-31 0:00 UTC),
        datetime!(2026-06-01 0:00 UTC),
    );
    let mut inputs = inputs(&root.pem, &issuer);
    inputs
        .proxies
        .push(proxy_chain("web.pem", &chain_pem(&leaf, &issuer)));
    let report = run(&inputs, true);
    assert_eq!(
        outcome(&report, PROXIES_CHAINED),
        (
            Status::Error,
            Some(
                "Some proxies present certificates that the current trust anchors do not \
                 accept:\n\t* web.pem: certificate chain rejected: a certificate expired at \
                 2026-06-01T00:00:00Z (now is 2026-06-01T12:00:00Z)"
                    .to_owned()
            )
        )
    );
    assert_eq!(
        outcome(&report, PROXIES_REFRESHED),
        (
            Status::Skipped,
            Some("no proxy certificate chained to the trust anchors".to_owned())
        )
    );
}

#[test]
fn proxy_leaf_past_its_refresh_point_warns() {
    let root = root();
    let issuer = issuer(&root);
    // 24h from 2026-05-31T16:00: refresh at 70% = 2026-06-01T08:48, before NOW (12:00).
    let leaf = leaf(
        &issuer,
        datetime!(2026-05-31 16:00 UTC),
        datetime!(2026-06-01 16:00 UTC),
    );
    let mut inputs = inputs(&root.pem, &issuer);
    inputs
        .proxies
        .push(proxy_chain("web.pem", &chain_pem(&leaf, &issuer)));
    let report = run(&inputs, true);
    assert_eq!(outcome(&report, PROXIES_CHAINED), (Status::Ok, None));
    assert_eq!(
        outcome(&report, PROXIES_REFRESHED),
        (
            Status::Warning,
            Some(
                "Some proxies have not renewed their certificates:\n\t* web.pem: proxy \
                 certificate should have been renewed at 2026-06-01T08:48:00Z (70% of its \
                 lifetime); it expires at 2026-06-01T16:00:00Z"
                    .to_owned()
            )
        )
    );
    assert_eq!(report.exit_code(FailOn::Error), 0);
    assert_eq!(report.exit_code(FailOn::Warning), 1);
}

#[test]
fn proxy_file_read_from_disk() {
    let root = root();
    let issuer = issuer(&root);
    let leaf = leaf(&issuer, LEAF_FROM, LEAF_UNTIL);
    let dir = temp_dir("proxy-file");
    let path = dir.path().join("web.pem");
    std::fs::write(&path, chain_pem(&leaf, &issuer)).unwrap();
    let chain = ProxyChain::read(&path);
    assert_eq!(chain.chain.as_ref().map(Vec::len), Ok(2));
    let missing = ProxyChain::read(&dir.path().join("nope.pem"));
    let path = dir.path().join("nope.pem").display().to_string();
    let error = missing.chain.unwrap_err();
    assert_eq!(error.to_string(), format!("{path} does not exist"));
    assert_eq!(error, meshid_check::Error::NotFound { path });
}

#[test]
fn fatal_identity_failure_skips_the_data_plane() {
    let root = root();
    let issuer = issuer_with(
        &root,
        Alg::P256,
        ISSUER_FROM,
        datetime!(2026-05-31 0:00 UTC),
    );
    let mut inputs = inputs(&root.pem, &issuer);
    inputs
        .proxy_bundles
        .push(PemSource::new("web-bundle.pem", root.pem));
    let report = run(&inputs, true);
    assert_eq!(
        outcome(&report, PROXIES_BUNDLE),
        (
            Status::Skipped,
            Some(
                "not run: the fatal check \"issuer cert is within its validity period\" failed"
                    .to_owned()
            )
        )
    );
    assert!(!report.render_table().contains("data-plane"));
}

// === live proxies over TLS ===

/// Serves `chain` (leaf first) with `key_pem` on 127.0.0.1 for one connection; returns the
/// port.
fn serve_once(chain_pem: &str, key_pem: &str) -> u16 {
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            if stream.conn.complete_io(&mut stream.sock).is_err() {
                return;
            }
        }
        // Wait for the client's close_notify (or EOF).
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut stream, &mut buf);
    });
    port
}

#[test]
fn live_proxy_chain_is_read_and_checked() {
    let root = root();
    let issuer = issuer(&root);
    let leaf = leaf(&issuer, LEAF_FROM, LEAF_UNTIL);
    let port = serve_once(&chain_pem(&leaf, &issuer), &leaf.key_pem());
    let addr: ProxyAddr = format!("{WEB_ID}@127.0.0.1:{port}").parse().unwrap();
    let chain = ProxyChain::connect(&addr, StdDuration::from_secs(10));
    assert_eq!(chain.chain.as_ref().unwrap()[0].as_ref(), leaf.der.as_ref());

    let mut inputs = inputs(&root.pem, &issuer);
    inputs.proxies.push(chain);
    let report = run(&inputs, true);
    assert_eq!(outcome(&report, PROXIES_CHAINED), (Status::Ok, None));
}

#[test]
fn live_proxy_from_another_ca_is_an_error() {
    let root = root();
    let issuer = issuer(&root);
    let foreign_root = root_with("foreign-root", 5, Alg::P256, ROOT_FROM, ROOT_UNTIL);
    let foreign_issuer = support::issuer(&foreign_root);
    let foreign = leaf(&foreign_issuer, LEAF_FROM, LEAF_UNTIL);
    let port = serve_once(&chain_pem(&foreign, &foreign_issuer), &foreign.key_pem());
    let addr: ProxyAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut inputs = inputs(&root.pem, &issuer);
    inputs
        .proxies
        .push(ProxyChain::connect(&addr, StdDuration::from_secs(10)));
    let report = run(&inputs, true);
    let (status, message) = outcome(&report, PROXIES_CHAINED);
    assert_eq!(status, Status::Error);
    assert!(message.unwrap().contains(&format!(
        "* 127.0.0.1:{port}: certificate chain rejected: no path to a trust anchor"
    )));
}

#[test]
fn unreachable_proxy_is_an_error() {
    // A socket bound to a port but not listening: connections are refused, and the port stays
    // ours for the whole test (a released one could be taken by another test meanwhile).
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let addr: ProxyAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let chain = ProxyChain::connect(&addr, StdDuration::from_secs(2));
    let error = chain.chain.unwrap_err();
    assert!(
        matches!(
            error,
            meshid_check::Error::Connect {
                problem: meshid_check::ConnectProblem::Socket {
                    address: None,
                    kind: std::io::ErrorKind::ConnectionRefused,
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    let reason = error.to_string();
    assert!(
        reason.starts_with(&format!(
            "cannot connect to 127.0.0.1:{port}: Connection refused"
        )),
        "{reason}"
    );
    drop(socket);
}

#[test]
fn a_proxy_that_closes_during_the_handshake_is_a_tls_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        // Accept, read the ClientHello, and close without a word.
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = std::io::Read::read(&mut conn, &mut buf);
    });
    let addr: ProxyAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let error = ProxyChain::connect(&addr, StdDuration::from_secs(5))
        .chain
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(
        error,
        meshid_check::Error::Tls {
            addr: format!("127.0.0.1:{port}"),
            problem: meshid_check::TlsProblem::Closed,
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "TLS handshake with 127.0.0.1:{port} failed: the server closed the connection (is \
             it a TLS 1.3 server? a Linkerd proxy terminates TLS only for its own identity: \
             pass it as SERVER-NAME@HOST:PORT)"
        )
    );
}

#[test]
fn a_directory_given_as_a_file_keeps_the_error_kind() {
    let dir = temp_dir("proxy-dir");
    let chain = ProxyChain::read(dir.path());
    let error = chain.chain.unwrap_err();
    let meshid_check::Error::Unreadable { path, kind, reason } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*path, dir.path().display().to_string());
    assert_eq!(*kind, std::io::ErrorKind::IsADirectory);
    assert_eq!(
        error.to_string(),
        format!("{path} cannot be read: {reason}")
    );
}

// === JSON ===

#[test]
fn json_report_is_scriptable() {
    let old = root_with("old-root", 1000, Alg::P256, ROOT_FROM, ROOT_UNTIL);
    let root = root();
    let issuer = issuer(&root);
    let mut inputs = inputs(&root.pem, &issuer);
    inputs
        .proxy_bundles
        .push(PemSource::new("web-bundle.pem", old.pem));
    let report = run(&inputs, true);

    let json: serde_json::Value =
        serde_json::from_str(&report.to_json(FailOn::Error).unwrap()).unwrap();
    assert_eq!(json["checked_at"], "2026-06-01T12:00:00Z");
    assert_eq!(json["clock"], "--now");
    assert_eq!(json["fail_on"], "error");
    assert_eq!(json["success"], true);
    let categories = json["categories"].as_array().unwrap();
    assert_eq!(categories.len(), 2);
    assert_eq!(categories[0]["name"], "linkerd-identity");
    assert_eq!(categories[1]["name"], "linkerd-identity-data-plane");
    let first = &categories[0]["checks"][0];
    assert_eq!(
        first,
        &serde_json::json!({
            "name": "certificate config is valid",
            "status": "ok",
            "severity": "fatal",
            "message": null,
            "hint": null,
        })
    );
    let bundle = &categories[1]["checks"][0];
    assert_eq!(bundle["name"], "data plane proxies certificate match CA");
    assert_eq!(bundle["status"], "warning");
    assert_eq!(bundle["severity"], "warning");
    assert!(
        bundle["message"]
            .as_str()
            .unwrap()
            .starts_with("Some pods do not have the current trust bundle")
    );
    let chained = &categories[1]["checks"][1];
    assert_eq!(chained["status"], "skipped");
    assert_eq!(chained["severity"], "error");

    // With --fail-on warning the same report is a failure.
    let json: serde_json::Value =
        serde_json::from_str(&report.to_json(FailOn::Warning).unwrap()).unwrap();
    assert_eq!(json["success"], false);
    assert_eq!(json["fail_on"], "warning");
}
