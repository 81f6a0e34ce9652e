//! What the identity service's integration tests share.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;

use meshid_server::serve::{Running, ServeConfig, start};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The service started with `config`, and what stops it.
pub(crate) async fn serve(config: ServeConfig) -> (Running, oneshot::Sender<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let running = start(config, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    (running, stop)
}

/// GET `path` from the admin server at `addr`; the whole answer, or "" when the server closed
/// the connection unanswered.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    // The server may close a connection past its cap before reading it.
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}
