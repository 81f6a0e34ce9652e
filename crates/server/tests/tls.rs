//! The identity service over its own TLS, as `identity-ca --tls` runs it: a client verifying
//! the service's name certifies, one expecting another name is refused while the service
//! keeps serving, `--tls auto` serves plaintext on loopback, and the certificate served
//! follows an issuer swap in the issuer folder without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{http_get, serve};

use std::time::Duration;

use meshid_ca::bootstrap::CaOptions;
use meshid_client::{Client, ClientConfig, TokenSource};
use meshid_grpc::{GrpcCertifier, Timeouts, TlsMode, identity_service_name};
use meshid_issuer::bootstrap::{self, OutputFiles, TrustAnchorKey};
use meshid_issuer::{IssuerFolder, IssuerScheme};
use meshid_policy::{Mesh, SanMode, ServiceAccount, SystemClock};
use meshid_server::dev::{DEV_TOKEN_ISSUER, DevState};
use meshid_server::serve::{ServeConfig, TokenValidation};
use meshid_verify::TrustBundle;
use zeroize::Zeroizing;

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const SERVICE: &str = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local";
const DAY: Duration = Duration::from_secs(24 * 3600);

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Two trust anchors, both in the bundle file the service reads, and an issuer folder holding
/// an issuer of the first.
struct Pki {
    dir: tempfile::TempDir,
    dev: DevState,
    first: TrustAnchorKey,
    second: TrustAnchorKey,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("meshid-server-tls-")
            .tempdir()
            .unwrap();
        let path = dir.path();
        let start = now() - Duration::from_secs(3600);
        let mut anchors = String::new();
        for name in ["first", "second"] {
            let out = OutputFiles::new(
                path.join(format!("{name}.crt")),
                path.join(format!("{name}.key")),
            );
            let root = bootstrap::write_root_ca(
                &out,
                &CaOptions::root(
                    &format!("{name}.root.linkerd.cluster.local"),
                    start,
                    10 * DAY,
                ),
                false,
            )
            .unwrap();
            anchors.push_str(&root.pem());
        }
        std::fs::write(path.join("ca-bundle.crt"), anchors).unwrap();
        let load = |name: &str| {
            TrustAnchorKey::load(
                &path.join(format!("{name}.crt")),
                &path.join(format!("{name}.key")),
            )
            .unwrap()
        };
        let pki = Self {
            dev: DevState::prepare(path.join("dev"), now()).unwrap(),
            first: load("first"),
            second: load("second"),
            dir,
        };
        std::fs::create_dir(pki.issuer_dir()).unwrap();
        pki.write_issuer(&pki.first);
        pki
    }

    fn issuer_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("issuer")
    }

    /// Writes an issuer of `anchor` into the issuer folder (replacing the one there).
    fn write_issuer(&self, anchor: &TrustAnchorKey) {
        let dir = self.issuer_dir();
        let options = bootstrap::issuer_options(
            "identity.linkerd.cluster.local",
            now() - Duration::from_secs(60),
            2 * DAY,
            true,
        );
        bootstrap::write_issuer(
            anchor,
            &OutputFiles::new(dir.join("crt.pem"), dir.join("key.pem")),
            &options,
            true,
        )
        .unwrap();
    }

    /// A bundle of one anchor's certificate.
    fn trusting(&self, name: &str) -> TrustBundle {
        let pem = std::fs::read(self.dir.path().join(format!("{name}.crt"))).unwrap();
        TrustBundle::from_pem(&pem).unwrap()
    }

    fn both(&self) -> TrustBundle {
        TrustBundle::from_pem(&std::fs::read(self.dir.path().join("ca-bundle.crt")).unwrap())
            .unwrap()
    }

    fn config(&self, tls: TlsMode) -> ServeConfig {
        let mut config = ServeConfig::new(
            IssuerFolder::new(self.issuer_dir(), IssuerScheme::LinkerdTls),
            Some(self.dir.path().join("ca-bundle.crt")),
            TokenValidation::Jwks(self.dev.jwks()),
        );
        config.grpc_addr = "127.0.0.1:0".parse().unwrap();
        config.admin_addr = "127.0.0.1:0".parse().unwrap();
        config.jwt_issuers = vec![DEV_TOKEN_ISSUER.to_owned()];
        config.tls = tls;
        config
    }

    /// One certification of emojivoto/web at `addr` (`HOST:PORT`, or with a scheme), the
    /// identity service verified as `name` against `anchors` when TLS is spoken.
    async fn certify(
        &self,
        addr: &str,
        mode: TlsMode,
        name: &str,
        anchors: TrustBundle,
    ) -> Result<bool, String> {
        self.certify_as(WEB, addr, mode, name, anchors).await
    }

    /// [`certify`](Self::certify) for the identity `workload` of emojivoto/web.
    async fn certify_as(
        &self,
        workload: &str,
        addr: &str,
        mode: TlsMode,
        name: &str,
        anchors: TrustBundle,
    ) -> Result<bool, String> {
        let sa = ServiceAccount::new("emojivoto", "web").unwrap();
        let token = self
            .dev
            .token(&sa, "identity.l5d.io", Duration::from_secs(3600), now())
            .unwrap();
        let timeouts = Timeouts::new(Duration::from_secs(5), Duration::from_secs(10));
        let (certifier, tls) = GrpcCertifier::connect_identity_service(
            addr,
            mode,
            name,
            anchors,
            SystemClock,
            timeouts,
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut config = ClientConfig::new(
            workload,
            TokenSource::Fixed(Zeroizing::new(token.into_bytes())),
            self.both(),
        );
        if workload.starts_with("spiffe://") {
            config.csr =
                meshid_csr::CsrParams::for_service_account(&Mesh::default(), &sa, SanMode::Spiffe)
                    .unwrap();
        }
        let mut client = Client::new(config, certifier, SystemClock).unwrap();
        client
            .certify_once()
            .await
            .map(|_| tls)
            .map_err(|e| e.to_string())
    }
}

#[test]
fn the_service_name_is_linkerds() {
    assert_eq!(identity_service_name(&Mesh::default()).unwrap(), SERVICE);
}

#[tokio::test]
async fn a_client_verifying_the_services_name_certifies_over_tls() {
    let pki = Pki::new();
    let (running, stop) = serve(pki.config(TlsMode::On)).await;
    assert_eq!(running.tls_identity.as_deref(), Some(SERVICE));
    let addr = running.grpc_addr.to_string();

    let tls = pki
        .certify(&addr, TlsMode::On, SERVICE, pki.trusting("first"))
        .await
        .unwrap();
    assert!(tls);
    // `https://` means TLS whatever the mode says.
    assert!(
        pki.certify(
            &format!("https://{addr}"),
            TlsMode::Off,
            SERVICE,
            pki.both()
        )
        .await
        .unwrap()
    );
    // A plaintext client is not answered.
    let plain = pki
        .certify(&format!("http://{addr}"), TlsMode::On, SERVICE, pki.both())
        .await;
    assert!(plain.is_err(), "{plain:?}");

    let ready = http_get(running.admin_addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let metrics = http_get(running.admin_addr, "/metrics").await;
    assert!(
        metrics.contains("identity_server_cert_issuances_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("identity_server_cert_expiration_timestamp_seconds"));
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn a_client_expecting_another_name_is_refused_and_the_service_keeps_serving() {
    let pki = Pki::new();
    let (running, stop) = serve(pki.config(TlsMode::On)).await;
    let addr = running.grpc_addr.to_string();
    let other = "linkerd-identity.other.serviceaccount.identity.other.cluster.local";
    let err = pki
        .certify(&addr, TlsMode::On, other, pki.both())
        .await
        .unwrap_err();
    assert!(
        err.contains(&format!("peer identity mismatch: expected \"{other}\"")),
        "{err}"
    );
    // An anchor the service's certificate does not chain to: refused too.
    let err = pki
        .certify(&addr, TlsMode::On, SERVICE, pki.trusting("second"))
        .await
        .unwrap_err();
    assert!(
        err.contains("identity service certificate refused"),
        "{err}"
    );
    assert!(
        pki.certify(&addr, TlsMode::On, SERVICE, pki.both())
            .await
            .unwrap()
    );
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn tls_auto_serves_plaintext_on_loopback() {
    let pki = Pki::new();
    let (running, stop) = serve(pki.config(TlsMode::Auto)).await;
    assert_eq!(running.tls_identity, None);
    // The client's auto rule agrees: plaintext to a loopback address.
    let tls = pki
        .certify(
            &running.grpc_addr.to_string(),
            TlsMode::Auto,
            SERVICE,
            pki.both(),
        )
        .await
        .unwrap();
    assert!(!tls);
    let metrics = http_get(running.admin_addr, "/metrics").await;
    assert!(
        !metrics.contains("identity_server_cert_issuances"),
        "{metrics}"
    );
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn the_served_certificate_follows_an_issuer_swap_without_a_restart() {
    let pki = Pki::new();
    let (running, stop) = serve(pki.config(TlsMode::On)).await;
    let addr = running.grpc_addr.to_string();
    assert!(
        pki.certify(&addr, TlsMode::On, SERVICE, pki.trusting("first"))
            .await
            .is_ok()
    );
    assert!(
        pki.certify(&addr, TlsMode::On, SERVICE, pki.trusting("second"))
            .await
            .is_err()
    );

    // cert-manager writes an issuer of the second anchor (both are trusted).
    pki.write_issuer(&pki.second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let second = pki
            .certify(&addr, TlsMode::On, SERVICE, pki.trusting("second"))
            .await;
        if second.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the served certificate did not follow the new issuer: {second:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Only the new one is served now.
    let first = pki
        .certify(&addr, TlsMode::On, SERVICE, pki.trusting("first"))
        .await;
    assert!(first.is_err(), "{first:?}");
    let metrics = http_get(running.admin_addr, "/metrics").await;
    assert!(
        metrics.contains("identity_server_cert_issuances_total{result=\"ok\"} 2"),
        "{metrics}"
    );
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn in_spiffe_mode_the_service_proves_its_spiffe_id() {
    let pki = Pki::new();
    let mut config = pki.config(TlsMode::On);
    config.policy.san_mode = SanMode::Spiffe;
    let (running, stop) = serve(config).await;
    let id = "spiffe://cluster.local/ns/linkerd/sa/linkerd-identity";
    assert_eq!(running.tls_identity.as_deref(), Some(id));
    let web = "spiffe://cluster.local/ns/emojivoto/sa/web";
    let addr = running.grpc_addr.to_string();
    assert!(
        pki.certify_as(web, &addr, TlsMode::On, id, pki.both())
            .await
            .unwrap()
    );
    // The DNS name is not what this service proves.
    let err = pki
        .certify_as(web, &addr, TlsMode::On, SERVICE, pki.both())
        .await
        .unwrap_err();
    assert!(err.contains("peer identity mismatch"), "{err}");
    let other = "spiffe://cluster.local/ns/other/sa/linkerd-identity";
    let err = pki
        .certify_as(web, &addr, TlsMode::On, other, pki.both())
        .await
        .unwrap_err();
    assert!(err.contains("peer identity mismatch"), "{err}");
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}
