//! `workload-agent`: a meshid agent beside one workload (`meshid_agent`).
//!
//! It certifies the workload's ServiceAccount with the identity CA over gRPC (`--token-file`
//! or `--token`), follows `--trust-anchors`, and serves the identity over the SPIFFE Workload
//! API (`--workload-api-socket`) and Envoy SDS (`--sds-socket`). The CA must issue SPIFFE IDs
//! (`identity-ca --san-mode spiffe`, or `dns+spiffe`). `/ready` on `--admin-addr` answers 503
//! until the first certificate is installed. Runs until SIGINT or SIGTERM.
//!
//! ```text
//! cargo run --example identity-ca -- --san-mode dns+spiffe
//! cargo run --example identity-ca -- token --namespace emojivoto --service-account web > web.token
//! cargo run --example workload-agent -- --trust-anchors .meshid-dev/trust-anchors.pem \
//!     --namespace emojivoto --service-account web --token-file web.token --san-mode dns+spiffe \
//!     --workload-api-socket ./agent.sock --sds-socket ./sds.sock
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgGroup, Parser};
use meshid::agent::{AgentConfig, start};
use meshid::client::TokenSource;
use meshid::policy::{Mesh, Namespace, SanMode, ServiceAccount, TrustDomain};
use tracing_subscriber::EnvFilter;
use zeroize::Zeroizing;

#[derive(Parser, Debug)]
#[command(
    about = "meshid workload agent: the workload's identity over the SPIFFE Workload API and Envoy SDS",
    group(ArgGroup::new("token_source").required(true).args(["token_file", "token"])),
    group(ArgGroup::new("served").required(true).multiple(true).args(["workload_api_socket", "sds_socket"])),
)]
struct Args {
    /// The identity CA's gRPC address (HOST:PORT or http://HOST:PORT, plaintext).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    identity_addr: String,
    /// PEM bundle of trust anchors; followed for anchor rotation.
    #[arg(long, value_name = "FILE")]
    trust_anchors: PathBuf,
    /// The workload's namespace.
    #[arg(long, value_name = "NS")]
    namespace: String,
    /// The workload's ServiceAccount.
    #[arg(long, value_name = "SA")]
    service_account: String,
    /// Trust domain of the mesh.
    #[arg(long, default_value = "cluster.local")]
    identity_trust_domain: TrustDomain,
    /// Namespace of the control plane.
    #[arg(long, default_value = "linkerd")]
    controller_namespace: Namespace,
    /// The identity CA's --san-mode: spiffe or dns+spiffe.
    #[arg(long, default_value = "spiffe")]
    san_mode: SanMode,
    /// File holding the ServiceAccount token (re-read on every renewal).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The ServiceAccount token itself.
    #[arg(long, value_name = "TEXT")]
    token: Option<String>,
    /// Serve the SPIFFE Workload API on this Unix socket.
    #[arg(long, value_name = "PATH")]
    workload_api_socket: Option<PathBuf>,
    /// Serve Envoy SDS on this Unix socket.
    #[arg(long, value_name = "PATH")]
    sds_socket: Option<PathBuf>,
    /// The sockets' permissions, octal (0660: the agent's user and group).
    #[arg(long, value_name = "MODE", default_value = "660", value_parser = octal)]
    socket_mode: u32,
    /// The admin server: /ready, /live, /ping, /metrics.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4191")]
    admin_addr: SocketAddr,
    /// Log filter (tracing-subscriber syntax); RUST_LOG, when set, wins.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log_level: String,
}

fn octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("'{text}' is not an octal permission mode such as 660"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("workload-agent: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
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

    let sa = ServiceAccount::new(&args.namespace, &args.service_account)
        .context("invalid --namespace/--service-account")?;
    let token = match (args.token_file, args.token) {
        (Some(path), _) => TokenSource::File(path),
        (None, Some(text)) => TokenSource::Fixed(Zeroizing::new(text.into_bytes())),
        (None, None) => anyhow::bail!("give --token-file or --token"),
    };
    let identity_addr = if args.identity_addr.contains("://") {
        args.identity_addr
    } else {
        format!("http://{}", args.identity_addr)
    };
    let mut config = AgentConfig::new(identity_addr, args.trust_anchors, sa, token);
    config.mesh = Mesh::new(args.identity_trust_domain, args.controller_namespace);
    config.san_mode = args.san_mode;
    config.workload_api_socket = args.workload_api_socket;
    config.sds_socket = args.sds_socket;
    config.socket_mode = args.socket_mode;
    config.admin_addr = args.admin_addr;
    let running = start(config, shutdown_signal()).await?;
    running.wait().await?;
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
