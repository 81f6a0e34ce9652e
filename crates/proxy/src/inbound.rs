//! Inbound: terminate mTLS, forward to the application.

use core::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use meshid_client::Credentials;
use meshid_client::tls::{ClientAuth, peer_identity_as, server_config};
use meshid_policy::Clock;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::{Direction, Error, Tap};

/// Accepts on `listener` until `shutdown`, terminating mTLS with the current certificate and
/// requiring verified client certificates; each connection is forwarded to `app`.
pub async fn serve(
    listener: TcpListener,
    app: SocketAddr,
    credentials: Arc<Credentials>,
    clock: impl Clock + Clone,
    taps: Option<mpsc::UnboundedSender<Tap>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let local: Arc<str> = Arc::from(credentials.identity());
    let config = server_config(credentials, ClientAuth::Required, clock)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::pin!(shutdown);
    loop {
        let (tcp, src) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "inbound accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let taps = taps.clone();
        let local = Arc::clone(&local);
        tokio::spawn(async move {
            if let Err(error) = handle(tcp, src, app, acceptor, taps, &local).await {
                tracing::info!(%src, %error, "proxy=in connection failed");
            }
        });
    }
}

async fn handle(
    tcp: TcpStream,
    src: SocketAddr,
    app: SocketAddr,
    acceptor: TlsAcceptor,
    taps: Option<mpsc::UnboundedSender<Tap>>,
    local: &str,
) -> Result<(), Error> {
    let mtls_local = tcp.local_addr()?;
    let mut tls = acceptor.accept(tcp).await?;
    let client_id = peer_identity_as(tls.get_ref().1, local);
    tracing::info!(
        "proxy=in src={src} dst={app} tls=true client_id={}",
        client_id.as_deref().unwrap_or("-")
    );
    if let Some(taps) = &taps {
        let _ = taps.send(Tap {
            direction: Direction::In,
            src,
            dst: app,
            peer_identity: client_id,
            mtls_local,
        });
    }
    let mut upstream = TcpStream::connect(app).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut upstream).await?;
    Ok(())
}
