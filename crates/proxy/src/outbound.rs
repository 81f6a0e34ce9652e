//! Outbound: accept plain TCP from the application, originate mTLS to a peer proxy.

use core::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use meshid_client::Credentials;
use meshid_client::tls::{client_config, peer_identity_as};
use meshid_policy::Clock;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use crate::{Direction, Error, Tap};

/// Accepts on `listener` until `shutdown`; each connection is carried over mTLS to `peer`,
/// which must present `peer_identity` (a DNS identity name or a SPIFFE ID).
pub async fn serve(
    listener: TcpListener,
    peer: SocketAddr,
    peer_identity: String,
    credentials: Arc<Credentials>,
    clock: impl Clock + Clone,
    taps: Option<mpsc::UnboundedSender<Tap>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let local: Arc<str> = Arc::from(credentials.identity());
    let config = client_config(credentials, &peer_identity, clock)?;
    let connector = TlsConnector::from(Arc::new(config));
    // The TLS server name is not used for verification (the expected identity is); a DNS
    // identity doubles as SNI, anything else is sent as a placeholder.
    let sni =
        ServerName::try_from(peer_identity.clone()).unwrap_or_else(|_| ServerName::from(peer.ip()));
    tokio::pin!(shutdown);
    loop {
        let (app, src) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "outbound accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let (connector, sni, taps) = (connector.clone(), sni.clone(), taps.clone());
        let local = Arc::clone(&local);
        tokio::spawn(async move {
            if let Err(error) = handle(app, src, peer, connector, sni, taps, &local).await {
                tracing::info!(%src, dst = %peer, %error, "proxy=out connection failed");
            }
        });
    }
}

async fn handle(
    mut app: TcpStream,
    src: SocketAddr,
    peer: SocketAddr,
    connector: TlsConnector,
    sni: ServerName<'static>,
    taps: Option<mpsc::UnboundedSender<Tap>>,
    local: &str,
) -> Result<(), Error> {
    let tcp = TcpStream::connect(peer).await?;
    let mtls_local = tcp.local_addr()?;
    let mut tls = connector.connect(sni, tcp).await?;
    let server_id = peer_identity_as(tls.get_ref().1, local);
    tracing::info!(
        "proxy=out src={src} dst={peer} tls=true server_id={}",
        server_id.as_deref().unwrap_or("-")
    );
    if let Some(taps) = &taps {
        let _ = taps.send(Tap {
            direction: Direction::Out,
            src,
            dst: peer,
            peer_identity: server_id,
            mtls_local,
        });
    }
    tokio::io::copy_bidirectional(&mut app, &mut tls).await?;
    Ok(())
}
