//! `mesh-demo`: the story of meshid in one command.
//!
//! It starts the identity service (a development CA in a fresh temporary folder, issuing both
//! Linkerd identity names and SPIFFE IDs: `--san-mode dns+spiffe`) and four workloads of
//! namespace `emojivoto`. `web`, `emoji` and `voting` are Linkerd-style: each gets its own key
//! and certificate over gRPC with its own ServiceAccount token, and knows itself by its
//! identity name. `vote-bot` is SPIFFE-style: a meshid agent beside it is certified with its
//! token and serves the SPIFFE Workload API on a Unix socket, and `vote-bot`'s proxy takes its
//! identity from there and knows itself by its SPIFFE ID. `emoji` and `voting` run a tiny echo
//! application behind an inbound proxy; `web` calls each, and `vote-bot` calls `voting`,
//! through outbound proxies over mTLS. The edges table is built only from what the proxies
//! reported of real handshakes: the client identity the inbound proxy verified, and the server
//! identity the outbound proxy verified, each in the form the reporting proxy uses itself, so
//! SPIFFE IDs and identity names appear side by side.
#![allow(clippy::disallowed_methods)] // a binary reads the clock

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use meshid::agent::AgentConfig;
use meshid::authn::DEFAULT_AUDIENCE;
use meshid::client::{Client, ClientConfig, Credentials, State, TokenSource};
use meshid::grpc::{GrpcCertifier, Timeouts};
use meshid::policy::{Mesh, SanMode, ServiceAccount, SystemClock};
use meshid::proxy::{Direction, Tap, inbound, outbound};
use meshid::server::dev::{DEV_TOKEN_ISSUER, DevState};
use meshid::server::serve::{ServeConfig, TokenValidation, start};
use meshid::verify::TrustBundle;
use meshid::workload_api::WorkloadApiClient;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing_subscriber::EnvFilter;
use zeroize::Zeroizing;

const NAMESPACE: &str = "emojivoto";
/// Generous bounds: every step takes milliseconds.
const STEP: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(
    about = "meshid demo: a CA, three Linkerd-style workloads and a SPIFFE one, mTLS between them, and what was observed"
)]
struct Args {
    /// Log filter (tracing-subscriber syntax) for the logs on stderr; RUST_LOG, when set, wins.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    log_level: String,
}

/// One workload: its identity and the credentials its client keeps current.
struct Workload {
    name: &'static str,
    credentials: Arc<Credentials>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => EnvFilter::try_new(&args.log_level)
            .with_context(|| format!("invalid --log-level {}", args.log_level))?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let dir = std::env::temp_dir().join(format!("meshid-mesh-demo-{}", std::process::id()));
    let result = demo(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(dir: &Path) -> Result<()> {
    println!(
        "meshid mesh-demo: a CA certifies web, emoji and voting ({NAMESPACE}) over gRPC, and \
         vote-bot's agent, which serves vote-bot its SPIFFE identity over the Workload API; \
         web calls emoji and voting, vote-bot calls voting, through their proxies over mTLS; \
         every edge below was observed in a handshake."
    );
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::<Result<()>>::new();

    // The identity service, in development mode, on ephemeral ports.
    let now = OffsetDateTime::now_utc();
    let dev = DevState::prepare(dir.to_owned(), now).context("preparing the CA")?;
    let mut config = ServeConfig::new(
        dev.issuer_folder(),
        Some(dev.trust_anchors()),
        TokenValidation::Jwks(dev.jwks()),
    );
    config.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.jwt_issuers = vec![DEV_TOKEN_ISSUER.to_owned()];
    config.policy.san_mode = SanMode::DnsAndSpiffe;
    let mesh = config.mesh.clone();
    let ca = start(config, stopped(stopping.clone()))
        .await
        .context("starting the CA")?;
    let uri = format!("http://{}", ca.grpc_addr);
    let bundle = TrustBundle::from_pem(&std::fs::read(dev.trust_anchors())?)?;

    // Three workloads, each certified by its own client with its own token.
    let mut workloads = Vec::new();
    for name in ["web", "emoji", "voting"] {
        let sa = ServiceAccount::new(NAMESPACE, name)?;
        let identity = mesh.identity(&sa)?;
        let token = dev.token(&sa, DEFAULT_AUDIENCE, Duration::from_secs(3600), now)?;
        let config = ClientConfig::new(
            identity.as_str(),
            TokenSource::Fixed(Zeroizing::new(token.into_bytes())),
            bundle.clone(),
        );
        let certifier = GrpcCertifier::connect_plaintext(&uri, Timeouts::default()).await?;
        let client = Client::new(config, certifier, SystemClock)?;
        let credentials = client.credentials();
        let rx = stopping.clone();
        tasks.spawn(async move {
            client.run(stopped(rx)).await;
            Ok(())
        });
        workloads.push(Workload { name, credentials });
    }
    // vote-bot: an agent certified with vote-bot's token serves the Workload API; vote-bot's
    // proxy follows it.
    let sa = ServiceAccount::new(NAMESPACE, "vote-bot")?;
    let token = dev.token(&sa, DEFAULT_AUDIENCE, Duration::from_secs(3600), now)?;
    let socket = dir.join("vote-bot-agent.sock");
    let mut agent = AgentConfig::new(
        uri.clone(),
        dev.trust_anchors(),
        sa.clone(),
        TokenSource::Fixed(Zeroizing::new(token.into_bytes())),
    );
    agent.san_mode = SanMode::DnsAndSpiffe;
    agent.workload_api_socket = Some(socket.clone());
    agent.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let agent = meshid::agent::start(agent, stopped(stopping.clone()))
        .await
        .context("starting vote-bot's agent")?;
    let credentials = Arc::new(Credentials::new(agent.spiffe_id.clone(), bundle.clone()));
    let follower = WorkloadApiClient::new(&socket);
    let (rx, followed) = (stopping.clone(), Arc::clone(&credentials));
    tasks.spawn(async move {
        follower.run(followed, SystemClock, stopped(rx)).await;
        Ok(())
    });
    tasks.spawn(async move { agent.wait().await.context("vote-bot's agent") });
    workloads.push(Workload {
        name: "vote-bot",
        credentials,
    });
    for workload in &workloads {
        let mut state = workload.credentials.state();
        tokio::time::timeout(STEP, state.wait_for(|s| matches!(s, State::Ready { .. })))
            .await
            .with_context(|| format!("{} was not certified in time", workload.name))??;
    }

    // emoji and voting: an echo application behind an inbound proxy; web: an outbound proxy
    // to each.
    let (taps, mut observed) = mpsc::unbounded_channel::<Tap>();
    let (web, vote_bot) = (&workloads[0], &workloads[3]);
    let mut routes = Vec::new();
    for (client, server) in [
        (web, &workloads[1]),
        (web, &workloads[2]),
        (vote_bot, &workloads[2]),
    ] {
        let app = TcpListener::bind("127.0.0.1:0").await?;
        let app_addr = app.local_addr()?;
        tasks.spawn(echo(app, stopped(stopping.clone())));

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let inbound_addr = listener.local_addr()?;
        let serve = inbound::serve(
            listener,
            app_addr,
            Arc::clone(&server.credentials),
            SystemClock,
            Some(taps.clone()),
            stopped(stopping.clone()),
        );
        tasks.spawn(async move { serve.await.context("inbound proxy") });

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let outbound_addr = listener.local_addr()?;
        // Each client expects the server by the kind of name it uses itself: vote-bot by
        // SPIFFE ID, web by identity name.
        let expected = if client.credentials.identity().starts_with("spiffe://") {
            mesh.spiffe_id(&ServiceAccount::new(NAMESPACE, server.name)?)
                .to_string()
        } else {
            server.credentials.identity().to_owned()
        };
        let serve = outbound::serve(
            listener,
            inbound_addr,
            expected,
            Arc::clone(&client.credentials),
            SystemClock,
            Some(taps.clone()),
            stopped(stopping.clone()),
        );
        tasks.spawn(async move { serve.await.context("outbound proxy") });
        routes.push((client.name, server.name, outbound_addr, inbound_addr));
    }
    drop(taps);

    // Each client calls its peer through its outbound proxy, and reads the echo.
    for (from, name, outbound_addr, _) in &routes {
        let request = format!("hello {name}\n");
        let reply = tokio::time::timeout(STEP, call(*outbound_addr, &request))
            .await
            .with_context(|| format!("{from} → {name} timed out"))??;
        if reply != request {
            bail!("{from} → {name}: sent {request:?}, got {reply:?}");
        }
    }

    // Every tap of those calls was sent before the bytes moved, so all are queued by now.
    let mut seen = Vec::new();
    while let Ok(tap) = observed.try_recv() {
        seen.push(tap);
    }
    let mut edges = Vec::new();
    for (from, name, _, inbound_addr) in &routes {
        // The outbound proxy's tap names the peer proxy it dialled; the inbound proxy's tap of
        // the same connection has, as its source, the outbound proxy's end of it.
        let out = seen
            .iter()
            .find(|t| t.direction == Direction::Out && t.dst == *inbound_addr)
            .ok_or_else(|| anyhow!("no outbound tap for {from} → {name}"))?;
        let inb = seen
            .iter()
            .find(|t| t.direction == Direction::In && t.src == out.mtls_local)
            .ok_or_else(|| anyhow!("no inbound tap of the connection {from} → {name}"))?;
        edges.push(Edge::observed(
            &mesh,
            inb.peer_identity.clone(),
            out.peer_identity.clone(),
        )?);
    }
    print!("\n{}", table(&edges));
    println!();
    for edge in &edges {
        println!(
            "{} → {}: client_id={} server_id={}",
            edge.src.name(),
            edge.dst.name(),
            edge.client_id.as_deref().unwrap_or("-"),
            edge.server_id.as_deref().unwrap_or("-"),
        );
    }

    // Shut everything down.
    let _ = stop.send(true);
    tokio::time::timeout(STEP, async {
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        ca.wait().await?;
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("shutdown timed out")?
}

/// An edge, from the identities two proxies verified for one call.
struct Edge {
    src: ServiceAccount,
    dst: ServiceAccount,
    client_id: Option<String>,
    server_id: Option<String>,
}

impl Edge {
    fn observed(mesh: &Mesh, client_id: Option<String>, server_id: Option<String>) -> Result<Self> {
        let parse = |id: &Option<String>, what: &str| -> Result<ServiceAccount> {
            let id = id
                .as_deref()
                .ok_or_else(|| anyhow!("no {what} identity was observed"))?;
            // A SPIFFE ID or an identity name, whichever the reporting proxy uses.
            Ok(if id.starts_with("spiffe://") {
                mesh.parse_spiffe_id(id)?
            } else {
                mesh.parse_identity(id)?
            })
        };
        Ok(Self {
            src: parse(&client_id, "client")?,
            dst: parse(&server_id, "server")?,
            client_id,
            server_id,
        })
    }

    /// Both sides presented a certificate their peer verified.
    fn secured(&self) -> bool {
        self.client_id.is_some() && self.server_id.is_some()
    }
}

fn table(edges: &[Edge]) -> String {
    let kind = |id: &Option<String>| match id.as_deref() {
        Some(id) if id.starts_with("spiffe://") => "spiffe",
        Some(_) => "dns",
        None => "-",
    };
    let mut rows = vec![
        [
            "SRC",
            "DST",
            "SRC_NS",
            "DST_NS",
            "SECURED",
            "CLIENT_ID",
            "SERVER_ID",
        ]
        .map(str::to_owned),
    ];
    for edge in edges {
        rows.push([
            edge.src.name().to_owned(),
            edge.dst.name().to_owned(),
            edge.src.namespace().to_string(),
            edge.dst.namespace().to_string(),
            if edge.secured() { "√" } else { "×" }.to_owned(),
            kind(&edge.client_id).to_owned(),
            kind(&edge.server_id).to_owned(),
        ]);
    }
    let mut widths = [0; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// web's side of a call: plain TCP to its outbound proxy, one line out, one line back.
async fn call(outbound: SocketAddr, request: &str) -> Result<String> {
    let mut stream = TcpStream::connect(outbound).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await?;
    Ok(reply)
}

/// The application of emoji and voting: echoes every connection until `shutdown`.
async fn echo(listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (mut stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                if stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
