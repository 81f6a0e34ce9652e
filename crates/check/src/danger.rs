//! Reading the certificate chain a live proxy presents, without trusting it.
//!
//! This is inspection, like `linkerd identity`: the connection accepts **any** certificate
//! chain, so it must never carry data. The chain read here is checked afterwards by the same
//! verification as a chain read from a file.

use core::time::Duration;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection};

use crate::{ConnectProblem, Error, ProxyAddr, TlsProblem};

/// Opens a TLS 1.3 connection to `addr`, completes the handshake, and returns the chain the
/// server presented (leaf first). The handshake signature is checked against the leaf's key
/// (the proxy holds the key); the chain itself is **not** verified here.
///
/// `timeout` bounds the TCP connect and each read or write of the handshake.
pub fn fetch_chain(
    addr: &ProxyAddr,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let label = addr.to_string();
    let tls = |problem: TlsProblem| Error::Tls {
        addr: label.clone(),
        problem,
    };
    let setup = |e: rustls::Error| {
        tls(TlsProblem::Setup {
            message: e.to_string(),
        })
    };
    let connect = |problem: ConnectProblem| Error::Connect {
        addr: label.clone(),
        problem,
    };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyChain {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(setup)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let server_name = server_name(addr).map_err(tls)?;
    let mut conn = ClientConnection::new(Arc::new(config), server_name).map_err(setup)?;

    let mut sock = open(addr, timeout).map_err(connect)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| tls(handshake_problem(&e)))?;
    }
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    // A polite close; the chain is already in hand, so a failure here does not matter.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    if chain.is_empty() {
        return Err(tls(TlsProblem::NoCertificate));
    }
    Ok(chain)
}

/// The SNI to send: the given server name, else the host if it is a DNS name, else none.
fn server_name(addr: &ProxyAddr) -> Result<ServerName<'static>, TlsProblem> {
    let name = addr.server_name().unwrap_or_else(|| addr.host());
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned()).map_err(|_| TlsProblem::ServerName {
        name: name.to_owned(),
    })
}

fn open(addr: &ProxyAddr, timeout: Duration) -> Result<TcpStream, ConnectProblem> {
    let socket = |address: Option<SocketAddr>, e: &io::Error| ConnectProblem::Socket {
        address,
        kind: e.kind(),
        message: e.to_string(),
    };
    let candidates =
        (addr.host(), addr.port())
            .to_socket_addrs()
            .map_err(|e| ConnectProblem::Resolve {
                host: addr.host().to_owned(),
                kind: e.kind(),
                message: e.to_string(),
            })?;
    let mut last = ConnectProblem::NoAddress;
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(sock) => {
                sock.set_read_timeout(Some(timeout))
                    .and_then(|()| sock.set_write_timeout(Some(timeout)))
                    .map_err(|e| socket(None, &e))?;
                return Ok(sock);
            }
            // Name the resolved address only when it differs from the one given.
            Err(e) if candidate.ip().to_string() == addr.host() => last = socket(None, &e),
            Err(e) => last = socket(Some(candidate), &e),
        }
    }
    Err(last)
}

fn handshake_problem(e: &io::Error) -> TlsProblem {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TlsProblem::TimedOut,
        io::ErrorKind::UnexpectedEof => TlsProblem::Closed,
        kind => TlsProblem::Handshake {
            kind,
            message: e.to_string(),
        },
    }
}

/// Accepts every server certificate chain: for reading the chain only, never for data.
#[derive(Debug)]
struct AcceptAnyChain {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Inspection only: the chain is verified afterwards, against the trust bundle.
        Ok(ServerCertVerified::assertion())
    }

    meshid_verify::handshake_signatures!(algorithms);
}
