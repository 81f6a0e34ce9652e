//! `meshid-proxy`: a meshid sidecar, as a command line (the `meshid-proxy` binary of this
//! crate, and the workspace's `proxy` example).
//!
//! It gets its identity from the identity service over gRPC (`--token-file` or `--token`),
//! then forwards `--inbound HOST:PORT` (mTLS, client certificates verified) to `--app
//! HOST:PORT`, and `--outbound HOST:PORT` to a peer proxy at `--peer HOST:PORT` over mTLS,
//! expecting `--peer-identity ID`. The `--trust-anchors` file is followed for anchor rotation
//! (`meshid_client::BundleWatcher`). Each inbound connection is logged as
//! `proxy=in src=<addr> dst=<addr> tls=true client_id=<id>`.
//!
//! The admin server (`--admin-addr`, Linkerd's proxy admin port 4191 by default) answers
//! `/ready` with 503 until the proxy is certified, then 200; `/live`, `/ping` and `/metrics`
//! (the identity client's metrics) always. Runs until SIGINT or SIGTERM.
//!
//! ```text
//! meshid-proxy --trust-anchors .meshid-dev/trust-anchors.pem \
//!     --namespace emojivoto --service-account emoji --token-file emoji.token \
//!     --inbound 127.0.0.1:4143 --app 127.0.0.1:7000
//! ```

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use meshid_admin::{self as admin, AdminLimits, AdminState};
use meshid_client::{
    BundleWatchOptions, BundleWatcher, Client, ClientConfig, Credentials, Metrics, State,
    TokenSource,
};
use meshid_grpc::{GrpcCertifier, Timeouts, TlsMode, identity_service_name};
use meshid_policy::{Mesh, Namespace, ServiceAccount, SystemClock, TrustDomain};
use meshid_verify::TrustBundle;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing_subscriber::EnvFilter;
use zeroize::Zeroizing;

use crate::{Error, inbound, outbound};

type Result<T> = core::result::Result<T, Error>;

/// What failed, as the command line says it.
fn failed(what: impl Into<String>) -> Error {
    Error::Start {
        what: what.into(),
        source: None,
    }
}

/// Adds what was being done to an error, as the command line says it.
trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for core::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Start {
            what: what.into(),
            source: Some(Box::new(e)),
        })
    }
}

/// How long running connections and tasks get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(
    about = "meshid proxy: certified over gRPC, forwards inbound and outbound traffic over mTLS",
    group(ArgGroup::new("token_source").required(true).args(["token_file", "token"])),
)]
struct Args {
    /// The identity service's gRPC address: HOST:PORT, several IP:PORT separated by commas
    /// (replicas), or one DNS name resolving to every replica (re-resolved every 10 s). An
    /// https:// or http:// prefix forces TLS or plaintext.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    identity_addr: String,
    /// Speak TLS to the identity service: auto (except on loopback, as Linkerd's proxy), on
    /// or off.
    #[arg(long, default_value = "auto")]
    identity_tls: TlsMode,
    /// The name the identity service must prove over TLS (default
    /// linkerd-identity.<controller-namespace>.serviceaccount.identity.<controller-namespace>.<trust-domain>).
    #[arg(long, value_name = "NAME")]
    identity_name: Option<String>,
    /// PEM bundle of trust anchors: the certificate and every peer must chain to one. Re-read
    /// every 10 seconds; a new bundle is taken if it still verifies this proxy's certificate.
    #[arg(long, value_name = "FILE")]
    trust_anchors: PathBuf,
    /// This proxy's identity, e.g. `web.emojivoto.serviceaccount.identity.linkerd.cluster.local`.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["namespace", "service_account"],
        required_unless_present_all = ["namespace", "service_account"],
    )]
    identity: Option<String>,
    /// The workload's namespace (with --service-account, instead of --identity).
    #[arg(long, value_name = "NS", requires = "service_account")]
    namespace: Option<String>,
    /// The workload's ServiceAccount (with --namespace, instead of --identity).
    #[arg(long, value_name = "SA", requires = "namespace")]
    service_account: Option<String>,
    /// Trust domain of the mesh.
    #[arg(long, default_value = "cluster.local")]
    identity_trust_domain: TrustDomain,
    /// Namespace of the control plane.
    #[arg(long, default_value = "linkerd")]
    controller_namespace: Namespace,
    /// File holding the ServiceAccount token (re-read on every renewal).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The ServiceAccount token itself.
    #[arg(long, value_name = "TEXT")]
    token: Option<String>,
    /// Where to accept mTLS from peer proxies (with --app).
    #[arg(long, value_name = "HOST:PORT", requires = "app")]
    inbound: Option<String>,
    /// The local application inbound connections are forwarded to (with --inbound).
    #[arg(long, value_name = "HOST:PORT", requires = "inbound")]
    app: Option<String>,
    /// Where to accept plain TCP from the local application (with --peer and --peer-identity).
    #[arg(long, value_name = "HOST:PORT", requires_all = ["peer", "peer_identity"])]
    outbound: Option<String>,
    /// The peer proxy's inbound address (with --outbound).
    #[arg(long, value_name = "HOST:PORT", requires = "outbound")]
    peer: Option<String>,
    /// The identity the peer proxy must present (DNS identity name or SPIFFE ID).
    #[arg(long, value_name = "ID", requires = "outbound")]
    peer_identity: Option<String>,
    /// The admin server: /ready, /live, /ping, /metrics.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4191")]
    admin_addr: SocketAddr,
    /// Log filter (tracing-subscriber syntax); RUST_LOG, when set, wins.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log_level: String,
}

/// Runs the proxy with `args` (the program name first) until SIGINT or SIGTERM. Exit codes:
/// 0 (stopped), 1 (failed, one line on standard error), 2 (invalid arguments).
pub fn main(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => error.exit(), // --help, --version
        Err(error) => {
            // clap's message on one line: everything before the usage.
            let rendered = error.to_string();
            let reason: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let reason = reason.join(" ");
            eprintln!("proxy: {}", reason.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("proxy: {}", meshid_grpc::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    init_logging(&args.log_level)?;

    // Everything that can be wrong with the flags fails here, before anything starts.
    let mesh = Mesh::new(
        args.identity_trust_domain.clone(),
        args.controller_namespace.clone(),
    );
    let identity = match (&args.identity, &args.namespace, &args.service_account) {
        (Some(identity), _, _) => {
            mesh.parse_identity(identity)
                .context("invalid --identity")?;
            identity.clone()
        }
        (None, Some(ns), Some(sa)) => {
            let sa =
                ServiceAccount::new(ns, sa).context("invalid --namespace/--service-account")?;
            mesh.identity(&sa)
                .context("invalid --namespace/--service-account")?
                .to_string()
        }
        _ => {
            return Err(failed(
                "give --identity, or --namespace and --service-account",
            ));
        }
    };
    let pem = std::fs::read(&args.trust_anchors).context(format!(
        "cannot read --trust-anchors {}",
        args.trust_anchors.display()
    ))?;
    let bundle = TrustBundle::from_pem(&pem).context(format!(
        "invalid --trust-anchors {}",
        args.trust_anchors.display()
    ))?;
    let token = match (&args.token_file, &args.token) {
        (Some(path), _) => TokenSource::File(path.clone()),
        (None, Some(text)) => TokenSource::Fixed(Zeroizing::new(text.clone().into_bytes())),
        (None, None) => return Err(failed("give --token-file or --token")),
    };
    token.read().context("unusable token")?;
    let inbound = match (&args.inbound, &args.app) {
        (Some(listen), Some(app)) => Some((
            bind("--inbound", listen).await?,
            resolve("--app", app).await?,
        )),
        _ => None,
    };
    let outbound = match (&args.outbound, &args.peer, &args.peer_identity) {
        (Some(listen), Some(peer), Some(id)) => Some((
            bind("--outbound", listen).await?,
            resolve("--peer", peer).await?,
            id.clone(),
        )),
        _ => None,
    };
    let admin_listener = admin::bind(args.admin_addr).await?;
    // The address bound, not the one asked for: with port 0 the log says which port it got.
    let admin_addr = admin_listener.local_addr()?;

    // One shutdown signal for every task.
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::<Result<()>>::new();

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);

    // The identity client, the admin server (ready while it holds a valid certificate), then
    // the proxies, which start once it is certified.
    let identity_name = match &args.identity_name {
        Some(name) => name.clone(),
        None => identity_service_name(&mesh).context("invalid --controller-namespace")?,
    };
    let (certifier, tls) = GrpcCertifier::connect_identity_service(
        &args.identity_addr,
        args.identity_tls,
        &identity_name,
        bundle.clone(),
        SystemClock,
        Timeouts::default(),
    )
    .await
    .context("invalid --identity-addr")?;
    if tls {
        tracing::info!(addr = %args.identity_addr, name = %identity_name, "identity service over TLS");
    } else {
        tracing::info!(addr = %args.identity_addr, "identity service over plaintext h2c");
    }
    let config = ClientConfig::new(&identity, token, bundle);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let rx = stopping.clone();
    let client = Client::new(config, certifier, SystemClock)
        .context("cannot start the identity client")?
        .with_metrics(metrics);
    let credentials = client.credentials();
    tasks.spawn(async move {
        client.run(stopped(rx)).await;
        Ok(())
    });
    let admin_state =
        Arc::new(AdminState::new(registry, || {}).with_readiness(Arc::clone(&credentials)));
    tracing::info!(admin = %admin_addr, %identity, "proxy starting");
    let rx = stopping.clone();
    tasks.spawn(async move {
        admin::serve(
            admin_listener,
            admin_state,
            &AdminLimits::default(),
            stopped(rx),
        )
        .await;
        Ok(())
    });
    // Anchor rotation: follow the --trust-anchors file (a mounted ConfigMap) without a restart.
    let watcher = BundleWatcher::new(
        &args.trust_anchors,
        &credentials,
        SystemClock,
        BundleWatchOptions::default(),
    )
    .context("cannot watch --trust-anchors")?;
    let rx = stopping.clone();
    tasks.spawn(async move {
        watcher.run(stopped(rx)).await;
        Ok(())
    });
    if let Some((listener, app)) = inbound {
        let (credentials, rx) = (Arc::clone(&credentials), stopping.clone());
        tracing::info!(inbound = %listener.local_addr()?, %app, "inbound proxy");
        tasks.spawn(async move {
            certified(&credentials).await;
            inbound::serve(listener, app, credentials, SystemClock, None, stopped(rx))
                .await
                .context("inbound proxy")
        });
    }
    if let Some((listener, peer, peer_identity)) = outbound {
        let (credentials, rx) = (Arc::clone(&credentials), stopping.clone());
        tracing::info!(outbound = %listener.local_addr()?, %peer, %peer_identity, "outbound proxy");
        tasks.spawn(async move {
            certified(&credentials).await;
            outbound::serve(
                listener,
                peer,
                peer_identity,
                credentials,
                SystemClock,
                None,
                stopped(rx),
            )
            .await
            .context("outbound proxy")
        });
    }

    // Run until a signal, or until a task fails.
    let outcome = tokio::select! {
        signalled = &mut signal => signalled,
        Some(joined) = tasks.join_next() => match joined {
            Ok(Ok(())) => Err(failed("a task stopped unexpectedly")),
            Ok(Err(error)) => Err(error),
            Err(error) => Err(error).context("a task failed"),
        },
    };
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while let Some(joined) = tasks.join_next().await {
            joined.context("a task failed")??;
        }
        Ok::<_, Error>(())
    })
    .await;
    outcome?;
    drained.context("tasks did not stop in time")?
}

fn init_logging(level: &str) -> Result<()> {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => EnvFilter::try_new(level).context(format!("invalid --log-level {level}"))?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// Resolves once the first certificate is installed.
async fn certified(credentials: &Credentials) {
    let mut state = credentials.state();
    let _ = state.wait_for(|s| matches!(s, State::Ready { .. })).await;
}

async fn bind(flag: &str, addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .context(format!("cannot listen on {flag} {addr}"))
}

async fn resolve(flag: &str, addr: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .context(format!("cannot resolve {flag} {addr}"))?
        .next()
        .ok_or_else(|| failed(format!("{flag} {addr} resolves to no address")))
}

async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("cannot listen for SIGINT"),
        _ = terminate.recv() => Ok(()),
    }
}
