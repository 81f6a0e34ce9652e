//! `identity-ca`: the meshid identity service's command line (Linkerd's `identity`
//! controller, and better), behind the `identity-ca` binary of this crate and the
//! `identity-ca` example of the workspace.
//!
//! With no arguments it runs in development mode: a state folder `./.meshid-dev/` (trust
//! anchor, issuer, token-signing key, JWKS) is created or reused, gRPC `Certify` listens on
//! 127.0.0.1:8080 and admin HTTP on 127.0.0.1:9990. `--issuer DIR` serves a real issuer
//! folder instead; so does running where Linkerd's chart mounts the issuer Secret
//! (`/var/run/linkerd/identity/issuer`, anchors from its trust-roots ConfigMap mount).
//! Linkerd's single-dash flags (`-identity-trust-domain=cluster.local`) work.
//!
//! Subcommands: `serve` (default), `token` (a development token), `root-ca`, `issuer`,
//! `cert-manager` (bootstrap tooling) and `manifests`.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use meshid_ca::bootstrap::CaOptions;
use meshid_grpc::{GrpcLimits, TlsMode};
use meshid_issuer::bootstrap::{self, CertManagerManifests, OutputFiles, TrustAnchorKey};
use meshid_issuer::{IssuerFolder, IssuerScheme};
use meshid_policy::{
    Clock as _, GoDuration, Mesh, Namespace, SanMode, ServiceAccount, SystemClock, TrustDomain,
    format_go_duration,
};

use crate::Error;
use crate::admin::AdminLimits;
use crate::dev::{DEFAULT_DEV_DIR, DEV_TOKEN_ISSUER, DevState};
use crate::linkerd::LinkerdMounts;
use crate::manifests::{self, Image, ManifestOptions};
use crate::serve::{AutoRotate, KubeApi, ServeConfig, TokenValidation, start};

type Result<T> = core::result::Result<T, Error>;

/// Allowed `--worker-threads`.
const WORKER_THREADS: RangeInclusive<usize> = 1..=1024;

/// Why a flag's value was refused (clap prints it after the flag's name).
#[derive(Debug, thiserror::Error)]
enum FlagValue {
    /// Not a number, or outside the allowed range.
    #[error("must be between {min} and {max}")]
    OutOfRange {
        /// The smallest value allowed, as written on the command line.
        min: String,
        /// The largest.
        max: String,
    },
    /// Not a Go duration.
    #[error("{0}")]
    Duration(meshid_policy::Error),
}

/// A number within `range`.
fn number_in<T: FromStr + PartialOrd + Display>(
    s: &str,
    range: &RangeInclusive<T>,
) -> core::result::Result<T, FlagValue> {
    let outside = || FlagValue::OutOfRange {
        min: range.start().to_string(),
        max: range.end().to_string(),
    };
    let n: T = s.parse().map_err(|_| outside())?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(outside())
    }
}

/// A Go duration within `range`.
fn duration_in(
    s: &str,
    range: &RangeInclusive<Duration>,
) -> core::result::Result<GoDuration, FlagValue> {
    let d: GoDuration = s.parse().map_err(FlagValue::Duration)?;
    if range.contains(&d.0) {
        Ok(d)
    } else {
        Err(FlagValue::OutOfRange {
            min: format_go_duration(*range.start()),
            max: format_go_duration(*range.end()),
        })
    }
}

#[derive(Parser, Debug)]
#[command(name = "identity-ca", about = "meshid identity service", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up; boxing buys nothing
enum Command {
    /// Serve gRPC Certify and admin HTTP (the default; `identity`, as in Linkerd's chart,
    /// works too).
    #[command(alias = "identity")]
    Serve(ServeArgs),
    /// Print a ServiceAccount token that the development CA accepts.
    Token(TokenArgs),
    /// Create a trust anchor (like `step certificate create --profile root-ca`).
    RootCa(RootCaArgs),
    /// Create an issuer signed by a trust anchor.
    Issuer(IssuerArgs),
    /// Print cert-manager Issuer + Certificate manifests that rotate the issuer.
    CertManager(CertManagerArgs),
    /// Print the Kubernetes manifests that run the identity service (kubectl apply -f -).
    Manifests(ManifestsArgs),
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// Development state folder (used when --issuer is not given).
    #[arg(long, default_value = DEFAULT_DEV_DIR)]
    dev_dir: PathBuf,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Admin HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:9990")]
    admin_addr: SocketAddr,
    /// Serve gRPC over TLS with a certificate for linkerd-identity.<controller-namespace>.
    /// serviceaccount.identity.<controller-namespace>.<trust-domain>, issued in memory from
    /// the current issuer: on, off, or auto (TLS on a non-loopback --addr, plaintext h2c on
    /// loopback, the rule Linkerd's proxy uses).
    #[arg(long, default_value = "auto")]
    tls: TlsMode,
    /// Trust domain.
    #[arg(long, default_value = "cluster.local")]
    identity_trust_domain: TrustDomain,
    /// Control-plane namespace.
    #[arg(long, default_value = "linkerd")]
    controller_namespace: Namespace,
    /// Leaf lifetime (Go duration).
    #[arg(long, default_value = "24h0m0s")]
    identity_issuance_lifetime: GoDuration,
    /// Clock-skew allowance (Go duration).
    #[arg(long, default_value = "20s")]
    identity_clock_skew_allowance: GoDuration,
    /// Which names a leaf carries: dns (Linkerd's identity name; the default), spiffe (only
    /// the SPIFFE ID spiffe://<trust-domain>/ns/<ns>/sa/<sa>, for SPIFFE-aware workloads and
    /// meshid agents) or dns+spiffe (both, so Linkerd proxies and SPIFFE-aware workloads
    /// share one CA).
    #[arg(long, default_value = "dns")]
    san_mode: SanMode,
    /// Issuer folder layout: linkerd.io/tls (crt.pem, key.pem) or kubernetes.io/tls.
    #[arg(long, default_value = "linkerd.io/tls")]
    identity_scheme: String,
    /// Issuer folder (a mounted Secret); without it, the one Linkerd's chart mounts at
    /// /var/run/linkerd/identity/issuer if present, else development mode.
    #[arg(long)]
    issuer: Option<PathBuf>,
    /// Trust-anchor bundle (default: Linkerd's mounted
    /// /var/run/linkerd/identity/trust-roots/ca-bundle.crt with Linkerd's issuer mount, else
    /// ca.crt of a kubernetes.io/tls issuer folder).
    #[arg(long)]
    trust_anchors: Option<PathBuf>,
    /// Trust-anchor key (0600): mint issuers on cert-manager's schedule (48h, renewed 25h
    /// before expiry) instead of waiting for cert-manager. Development mode does this always.
    /// Replicas sharing one writable issuer folder take turns through a lock file in it, so
    /// only one writes each new issuer; replicas on several nodes use cert-manager instead.
    #[arg(long, requires = "trust_anchors")]
    trust_anchor_key: Option<PathBuf>,
    /// Token validation: tokenreview; oidc (offline with the keys the API server publishes,
    /// TokenReview for what that cannot judge); oidc-only (no TokenReview); jwks:FILE or
    /// static:FILE (development mode default: its own JWKS).
    #[arg(long)]
    token_validation: Option<TokenValidation>,
    /// Kubeconfig for the Kubernetes API: TokenReview, OIDC discovery and --kube-events (default: the file
    /// KUBECONFIG names, else ~/.kube/config if it exists, else the in-cluster configuration).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current-context).
    #[arg(long)]
    kube_context: Option<String>,
    /// TokenReview requests per second to the API server (0.01 to 1000000).
    #[arg(long, default_value_t = 100.0, value_parser = |s: &str| number_in(s, &KubeApi::QPS))]
    kube_apiclient_qps: f64,
    /// TokenReview requests allowed at once above that rate (1 to 1000000).
    #[arg(long, default_value_t = 200, value_parser = |s: &str| number_in(s, &KubeApi::BURST))]
    kube_apiclient_burst: u32,
    /// HTTP/2 streams one gRPC connection may have open at once, advertised as
    /// SETTINGS_MAX_CONCURRENT_STREAMS (1 to 10000).
    #[arg(long, default_value_t = GrpcLimits::default().max_concurrent_streams,
        value_parser = |s: &str| number_in(s, &GrpcLimits::MAX_CONCURRENT_STREAMS))]
    grpc_max_concurrent_streams: u32,
    /// Largest Certify request, in bytes (16384 to 16777216); a larger one is refused
    /// (OUT_OF_RANGE).
    #[arg(long, default_value_t = GrpcLimits::default().max_message_size,
        value_parser = |s: &str| number_in(s, &GrpcLimits::MAX_MESSAGE_SIZE))]
    grpc_max_message_size: usize,
    /// Deadline of one Certify request, token review included (Go duration, 100ms to 5m);
    /// past it: DEADLINE_EXCEEDED.
    #[arg(long, default_value_t = GoDuration(GrpcLimits::default().request_timeout),
        value_parser = |s: &str| duration_in(s, &GrpcLimits::REQUEST_TIMEOUT))]
    grpc_request_timeout: GoDuration,
    /// Certify requests answered at once over all connections (1 to 1000000); past it:
    /// RESOURCE_EXHAUSTED at once.
    #[arg(long, default_value_t = GrpcLimits::default().max_in_flight,
        value_parser = |s: &str| number_in(s, &GrpcLimits::MAX_IN_FLIGHT))]
    grpc_max_in_flight: usize,
    /// Idle time after which a gRPC connection is PINGed (Go duration, 100ms to 2h).
    #[arg(long, default_value_t = GoDuration(GrpcLimits::default().keepalive_interval),
        value_parser = |s: &str| duration_in(s, &GrpcLimits::KEEPALIVE_INTERVAL))]
    grpc_keepalive_interval: GoDuration,
    /// Time a PINGed connection has to answer before it is closed (Go duration, 100ms to
    /// 10m).
    #[arg(long, default_value_t = GoDuration(GrpcLimits::default().keepalive_timeout),
        value_parser = |s: &str| duration_in(s, &GrpcLimits::KEEPALIVE_TIMEOUT))]
    grpc_keepalive_timeout: GoDuration,
    /// Time an admin client has to send a request's headers (Go duration, 100ms to 10s).
    #[arg(long, default_value_t = GoDuration(AdminLimits::default().header_read_timeout),
        value_parser = |s: &str| duration_in(s, &AdminLimits::HEADER_READ_TIMEOUT))]
    admin_header_read_timeout: GoDuration,
    /// Admin connections served at once (1 to 100000); past it, new ones are closed.
    #[arg(long, default_value_t = AdminLimits::default().max_connections,
        value_parser = |s: &str| number_in(s, &AdminLimits::MAX_CONNECTIONS))]
    admin_max_connections: usize,
    /// Retry a TokenReview without audiences when the API server says it cannot review them,
    /// as Linkerd does. Only for such API servers: otherwise it lets tokens of other
    /// audiences (any pod's default token) through. Logged as a warning at start.
    #[arg(long)]
    token_review_audience_fallback: bool,
    /// An accepted token issuer (`iss`) for --token-validation jwks:FILE; repeat it for
    /// several. Default: https://kubernetes.default.svc.cluster.local (on EKS, GKE and AKS,
    /// give the cluster's OIDC issuer URL).
    #[arg(long = "token-issuer", value_name = "URL")]
    token_issuers: Vec<String>,
    /// Also post the issuer's events (IssuerUpdated, IssuerUpdateSkipped,
    /// IssuedLeafCertificate, ...) as Kubernetes Events on the Deployment linkerd-identity in
    /// --controller-namespace, through the same API access as TokenReview.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    kube_events: bool,
    /// Accepted for the Linkerd chart's arguments; Go's pprof has no counterpart here.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    enable_pprof: bool,
    /// Accepted for the Linkerd chart's arguments; tracing export is not built in.
    #[arg(long)]
    trace_collector: Option<String>,
    /// Log level (error, warn, info, debug, trace) or a filter directive.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Runtime worker threads (default: one per core; 1 to 1024).
    #[arg(long, value_parser = |s: &str| number_in(s, &WORKER_THREADS))]
    worker_threads: Option<usize>,
    /// Log format: plain or json.
    #[arg(long, default_value = "plain", value_parser = ["plain", "json"])]
    log_format: String,
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// Development state folder.
    #[arg(long, default_value = DEFAULT_DEV_DIR)]
    dev_dir: PathBuf,
    /// The workload's namespace.
    #[arg(long)]
    namespace: String,
    /// The workload's ServiceAccount.
    #[arg(long)]
    service_account: String,
    /// Token audience.
    #[arg(long, default_value = "identity.l5d.io")]
    audience: String,
    /// Token lifetime (Go duration).
    #[arg(long, default_value = "1h")]
    ttl: GoDuration,
}

#[derive(Args, Debug)]
struct RootCaArgs {
    /// Certificate output.
    #[arg(long, default_value = "ca.crt")]
    cert: PathBuf,
    /// Key output (written 0600).
    #[arg(long, default_value = "ca.key")]
    key: PathBuf,
    /// Subject CN.
    #[arg(long, default_value = bootstrap::ROOT_COMMON_NAME)]
    common_name: String,
    /// Validity (Go duration; default 10 years).
    #[arg(long, default_value = "87600h")]
    duration: GoDuration,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct IssuerArgs {
    /// Trust-anchor certificate.
    #[arg(long)]
    ca_cert: PathBuf,
    /// Trust-anchor key (must be 0600).
    #[arg(long)]
    ca_key: PathBuf,
    /// Certificate output.
    #[arg(long, default_value = "issuer.crt")]
    cert: PathBuf,
    /// Key output (written 0600).
    #[arg(long, default_value = "issuer.key")]
    key: PathBuf,
    /// Subject CN.
    #[arg(long, default_value = bootstrap::ISSUER_COMMON_NAME)]
    common_name: String,
    /// Validity (Go duration).
    #[arg(long, default_value = "48h")]
    duration: GoDuration,
    /// Leave out the serverAuth + clientAuth EKU.
    #[arg(long)]
    no_eku: bool,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct CertManagerArgs {
    /// The control-plane namespace.
    #[arg(long, default_value = "linkerd")]
    namespace: String,
}

#[derive(Args, Debug)]
struct ManifestsArgs {
    /// The control-plane namespace.
    #[arg(long, default_value = "linkerd")]
    namespace: Namespace,
    /// Pods (1 to 100).
    #[arg(long, default_value_t = 3)]
    replicas: i32,
    /// The identity-ca image (default: this version's).
    #[arg(long)]
    image: Option<Image>,
    /// Trust domain.
    #[arg(long, default_value = "cluster.local")]
    identity_trust_domain: TrustDomain,
    /// Issuer Secret layout: linkerd.io/tls (crt.pem, key.pem) or kubernetes.io/tls.
    #[arg(long, default_value = "linkerd.io/tls")]
    identity_scheme: String,
    /// Also grant get on the API server's OIDC discovery paths (off: TokenReview needs none).
    #[arg(long)]
    oidc_discovery: bool,
}

/// Runs `identity-ca` with `args` (the program name first, as [`std::env::args`] gives them):
/// parses them (Linkerd's single-dash spellings included), runs the subcommand, and says what
/// failed in one line on standard error. Exit codes: 0, 1 (failed), 2 (invalid arguments).
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args = super::normalize_linkerd_flags(args);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("identity-ca: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("identity-ca: {}", meshid_grpc::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let now = SystemClock.now();
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Token(args)) => {
            let sa = ServiceAccount::new(&args.namespace, &args.service_account)
                .map_err(Error::Policy)?;
            let token =
                DevState::open(&args.dev_dir)?.token(&sa, &args.audience, args.ttl.into(), now)?;
            println!("{token}");
            Ok(())
        }
        Some(Command::RootCa(args)) => {
            let options = CaOptions::root(&args.common_name, now, args.duration.into());
            let files = OutputFiles::new(&args.cert, &args.key);
            bootstrap::write_root_ca(&files, &options, args.force).map_err(Error::Bootstrap)?;
            wrote(&args.cert, &args.key);
            Ok(())
        }
        Some(Command::Issuer(args)) => {
            let anchor =
                TrustAnchorKey::load(&args.ca_cert, &args.ca_key).map_err(Error::Bootstrap)?;
            let options = bootstrap::issuer_options(
                &args.common_name,
                now,
                args.duration.into(),
                !args.no_eku,
            );
            let files = OutputFiles::new(&args.cert, &args.key);
            bootstrap::write_issuer(&anchor, &files, &options, args.force)
                .map_err(Error::Bootstrap)?;
            wrote(&args.cert, &args.key);
            Ok(())
        }
        Some(Command::CertManager(args)) => {
            let manifests = CertManagerManifests::new(&args.namespace)
                .render()
                .map_err(Error::Bootstrap)?;
            print!("{manifests}");
            Ok(())
        }
        Some(Command::Manifests(args)) => {
            let options = ManifestOptions {
                namespace: args.namespace,
                replicas: args.replicas,
                image: args.image.unwrap_or_default(),
                trust_domain: args.identity_trust_domain,
                issuer_scheme: scheme(&args.identity_scheme)?,
                oidc_discovery: args.oidc_discovery,
                ..ManifestOptions::default()
            };
            print!("{}", manifests::render(&options)?);
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_level, &args.log_format)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.worker_threads {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().build().map_err(|e| Error::Config {
        reason: format!("cannot start the runtime: {e}"),
    })?;
    runtime.block_on(async move {
        let now = SystemClock.now();
        let scheme = scheme(&args.identity_scheme)?;
        // No --issuer: Linkerd's mounted issuer if this runs where the chart mounts it, else
        // development mode.
        let mounted = args.issuer.is_none().then(LinkerdMounts::find).flatten();
        if let Some(mounts) = &mounted {
            tracing::info!(issuer = %mounts.issuer.display(), "serving the issuer mounted by Linkerd's chart");
        }
        let issuer_dir = args.issuer.clone().or_else(|| mounted.as_ref().map(|m| m.issuer.clone()));
        let trust_anchors = args.trust_anchors.clone().or_else(|| mounted.and_then(|m| m.trust_anchors));
        let (mut config, dev) = match &issuer_dir {
            Some(dir) => {
                let validation = args.token_validation.clone().unwrap_or(TokenValidation::TokenReview);
                let mut config = ServeConfig::new(IssuerFolder::new(dir, scheme), trust_anchors.clone(), validation);
                if let (Some(key), Some(cert)) = (&args.trust_anchor_key, &trust_anchors) {
                    config.auto_rotate = Some(AutoRotate::new(cert.clone(), key.clone()));
                }
                (config, None)
            }
            None => {
                let dev = DevState::prepare(&args.dev_dir, now)?;
                // Development tokens by default; an explicit --token-validation wins (the load
                // generator uses static tokens to measure issuance, not JWT verification).
                let validation = args.token_validation.clone().unwrap_or_else(|| TokenValidation::Jwks(dev.jwks()));
                let mut config = ServeConfig::new(dev.issuer_folder(), Some(dev.trust_anchors()), validation);
                config.jwt_issuers = vec![DEV_TOKEN_ISSUER.to_owned()];
                config.auto_rotate = Some(AutoRotate::new(dev.trust_anchors(), dev.trust_anchor_key()));
                (config, Some(dev))
            }
        };
        config.grpc_addr = args.addr;
        config.admin_addr = args.admin_addr;
        config.tls = args.tls;
        config.grpc.max_concurrent_streams = args.grpc_max_concurrent_streams;
        config.grpc.max_message_size = args.grpc_max_message_size;
        config.grpc.request_timeout = args.grpc_request_timeout.into();
        config.grpc.max_in_flight = args.grpc_max_in_flight;
        config.grpc.keepalive_interval = args.grpc_keepalive_interval.into();
        config.grpc.keepalive_timeout = args.grpc_keepalive_timeout.into();
        config.admin.header_read_timeout = args.admin_header_read_timeout.into();
        config.admin.max_connections = args.admin_max_connections;
        config.mesh = Mesh::new(args.identity_trust_domain.clone(), args.controller_namespace.clone());
        config.policy.lifetime = args.identity_issuance_lifetime.into();
        config.policy.clock_skew = args.identity_clock_skew_allowance.into();
        config.policy.san_mode = args.san_mode;
        if args.san_mode != SanMode::Dns {
            tracing::info!(san_mode = %args.san_mode, "issuing SPIFFE IDs");
        }
        config.kube_api = KubeApi {
            kubeconfig: args.kubeconfig.clone(),
            context: args.kube_context.clone(),
            qps: args.kube_apiclient_qps,
            burst: args.kube_apiclient_burst,
            audience_fallback: args.token_review_audience_fallback,
        };
        if !args.token_issuers.is_empty() {
            config.jwt_issuers.clone_from(&args.token_issuers);
        }
        config.kube_events = args.kube_events;
        if args.enable_pprof {
            tracing::warn!("--enable-pprof is ignored: Go's pprof endpoints have no counterpart here");
        }
        if let Some(collector) = &args.trace_collector {
            tracing::warn!(%collector, "--trace-collector is ignored: trace export is not built in");
        }
        let running = start(config, shutdown_signal()).await?;
        if let Some(dev) = dev {
            let dir = dev.dir().display();
            println!("meshid identity CA (development mode, state in {dir})");
            match &running.tls_identity {
                Some(name) => println!("  gRPC Certify over TLS as {name} on {}, admin on http://{}/ready", running.grpc_addr, running.admin_addr),
                None => println!("  gRPC Certify on {}, admin on http://{}/ready", running.grpc_addr, running.admin_addr),
            }
            println!("  get a token:");
            println!("    cargo run --example identity-ca -- token --dev-dir {dir} --namespace emojivoto --service-account web > web.token");
            println!("  run a proxy with it:");
            println!(
                "    cargo run --example proxy -- --identity-addr {} --trust-anchors {} --namespace emojivoto --service-account web --token-file web.token --outbound 127.0.0.1:4140 --peer 127.0.0.1:4143 --peer-identity emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local",
                running.grpc_addr,
                dev.trust_anchors().display()
            );
            println!("  or see the whole story: cargo run --example mesh-demo");
        }
        running.wait().await?;
        tracing::info!("identity service stopped");
        Ok(())
    })
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = ctrl_c.await;
        return;
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: in-flight requests finish first");
}

/// Says which files a bootstrap subcommand wrote.
fn wrote(cert: &std::path::Path, key: &std::path::Path) {
    println!("wrote {} and {} (0600)", cert.display(), key.display());
}

/// `--identity-scheme`'s value.
fn scheme(value: &str) -> Result<IssuerScheme> {
    value.parse().map_err(Error::Scheme)
}

fn init_logging(level: &str, format: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| Error::Config {
        reason: format!("invalid --log-level {level}: {e}"),
    })?;
    // Colours only on a terminal: `kubectl logs` and log collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let installed = match format {
        "json" => builder.json().try_init(),
        _ => builder.try_init(),
    };
    installed.map_err(|e| Error::Config {
        reason: format!("cannot install the logger: {e}"),
    })
}
