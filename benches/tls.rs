//! TLS 1.3 mutual-auth handshakes in memory: plain rustls with static certificates against
//! the same handshake through meshid's resolvers and verifiers. Session resumption is off in
//! both, so every iteration is a full handshake. Target: meshid >= 1.15 x plain.

#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use meshid::ca::Ca;
use meshid::ca::bootstrap::{CaOptions, create_intermediate, create_root};
use meshid::client::tls::{ClientAuth, client_config, server_config};
use meshid::client::{Client, ClientConfig, LocalCertifier, TokenSource};
use meshid::policy::{IssuancePolicy, Mesh, TokioClock};
use meshid::verify::TrustBundle;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConnection, RootCertStore, ServerConnection};
use time::macros::datetime;
use zeroize::Zeroizing;

const CLIENT_ID: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const SERVER_ID: &str = "emoji-svc.emojivoto.serviceaccount.identity.linkerd.cluster.local";

/// The fixed time both configurations verify certificates at.
#[derive(Debug)]
struct FixedTime(UnixTime);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// One full handshake between fresh connections, bytes pumped through memory.
fn handshake(client: &Arc<rustls::ClientConfig>, server: &Arc<rustls::ServerConfig>) {
    let name = ServerName::try_from(SERVER_ID).expect("name");
    let mut c = ClientConnection::new(Arc::clone(client), name).expect("client");
    let mut s = ServerConnection::new(Arc::clone(server)).expect("server");
    let mut buf = Vec::with_capacity(8 * 1024);
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("client write");
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            s.read_tls(&mut slice).expect("server read");
        }
        s.process_new_packets().expect("server handshake");
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).expect("server write");
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            c.read_tls(&mut slice).expect("client read");
        }
        c.process_new_packets().expect("client handshake");
    }
    black_box((c, s));
}

fn handshakes(c: &mut Criterion) {
    let now = datetime!(2026-06-01 12:00 UTC);
    let day = Duration::from_secs(86_400);
    let from = datetime!(2026-01-01 0:00 UTC);
    let root = create_root(&CaOptions::root(
        "root.linkerd.cluster.local",
        from,
        3650 * day,
    ))
    .expect("root");
    let issuer = create_intermediate(
        &root,
        &CaOptions::issuer("identity.linkerd.cluster.local", from, 365 * day),
    )
    .expect("issuer");
    let bundle = TrustBundle::from_pem(root.pem().as_bytes()).expect("bundle");
    let ca =
        Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).expect("ca"));
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now)
        .expect("issuer loads");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clock = runtime.block_on(async { TokioClock::new(now) });
    let certified = |identity: &str| {
        let token = TokenSource::Fixed(Zeroizing::new(b"bench".to_vec()));
        let mut client = Client::new(
            ClientConfig::new(identity, token, bundle.clone()),
            LocalCertifier::new(Arc::clone(&ca), clock),
            clock,
        )
        .expect("client");
        runtime.block_on(client.certify_once()).expect("certified");
        client.credentials()
    };
    let client_creds = certified(CLIENT_ID);
    let server_creds = certified(SERVER_ID);

    // meshid: resolvers over the credentials, mesh verifiers.
    let meshid_client = Arc::new(
        client_config(Arc::clone(&client_creds), SERVER_ID, clock).expect("client config"),
    );
    let meshid_server = Arc::new(
        server_config(Arc::clone(&server_creds), ClientAuth::Required, clock)
            .expect("server config"),
    );

    // plain: the same certificates and keys, static, with rustls's webpki verifiers.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.der().to_vec()))
        .expect("root");
    let roots = Arc::new(roots);
    let client_key = client_creds.certified_key().expect("client cert");
    let server_key = server_creds.certified_key().expect("server cert");
    let fixed: Arc<dyn TimeProvider> = Arc::new(FixedTime(UnixTime::since_unix_epoch(
        Duration::from_secs(u64::try_from(now.unix_timestamp()).expect("after 1970")),
    )));
    let mut plain_client =
        rustls::ClientConfig::builder_with_details(Arc::clone(&provider), Arc::clone(&fixed))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(Arc::clone(&roots))
            .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(Arc::clone(
                &client_key,
            ))));
    plain_client.resumption = rustls::client::Resumption::disabled();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .expect("client verifier");
    let mut plain_server = rustls::ServerConfig::builder_with_details(provider, fixed)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(server_key)));
    plain_server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    plain_server.send_tls13_tickets = 0;
    let (plain_client, plain_server) = (Arc::new(plain_client), Arc::new(plain_server));

    let mut group = c.benchmark_group("tls");
    // Handshakes are ~0.5 ms: a longer measurement keeps scheduler noise out of the ratio.
    group.measurement_time(Duration::from_secs(10));
    // Each timed handshake follows an untimed one of the other configuration, so both are
    // measured in the same state of caches, branch predictors and CPU frequency.
    type Pair<'a> = (&'a Arc<rustls::ClientConfig>, &'a Arc<rustls::ServerConfig>);
    fn interleaved<'a>(timed: Pair<'a>, other: Pair<'a>) -> impl FnMut(u64) -> Duration + 'a {
        move |iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                handshake(other.0, other.1);
                let start = Instant::now();
                handshake(timed.0, timed.1);
                total += start.elapsed();
            }
            total
        }
    }
    let plain = (&plain_client, &plain_server);
    let meshid = (&meshid_client, &meshid_server);
    group.bench_function("handshake_plain", |b| {
        b.iter_custom(interleaved(plain, meshid))
    });
    group.bench_function("handshake_meshid", |b| {
        b.iter_custom(interleaved(meshid, plain))
    });
    group.finish();
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
