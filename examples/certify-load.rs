//! `certify-load`: a load generator for the identity service.
//!
//! By default it starts `identity-ca` (the example binary next to this one) as a separate
//! process in development mode with a static token file of `--identities` distinct
//! ServiceAccounts, so the server's CPU time and RSS can be read from `/proc`. Then it sends
//! `--requests` Certify calls (or runs for `--duration` seconds), `--concurrency` in flight over
//! `--connections` HTTP/2 channels, cycling through the identities with one precomputed P-256
//! key and CSR each, and prints throughput, latency percentiles, server CPU per certify against
//! the ring floor (one ECDSA P-256 sign + one verify, measured here before and after the load;
//! the faster measurement counts, so a slow moment of the machine cannot flatter the ratio) and
//! server RSS.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/certify-load
//! target/release/examples/certify-load --concurrency 128 --connections 8
//! ```
//!
//! Against an identity service that is already running (static token file
//! `token,namespace,serviceaccount` per line):
//!
//! ```text
//! target/release/examples/certify-load --addr 127.0.0.1:8080 --tokens tokens.csv --server-pid 1234
//! ```
#![allow(clippy::disallowed_methods)] // a load generator reads the clock

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use meshid::csr::{Csr, CsrParams, KeyPair};
use meshid::grpc::proto::CertifyRequest;
use meshid::grpc::proto::identity_client::IdentityClient;
use meshid::policy::{KeyAlgorithm, Mesh, Namespace, SanMode, ServiceAccount, TrustDomain};
use meshid::server::dev::DevState;
use meshid_loadgen::process;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use time::OffsetDateTime;
use tonic::transport::{Channel, Endpoint};

/// Throughput target (certifies/s, this machine, load generator included).
const TARGET_THROUGHPUT: f64 = 8_000.0;
/// Server CPU per certify target, as a multiple of t_sign + t_verify.
const TARGET_CPU_RATIO: f64 = 1.5;
/// Server RSS target (MiB) after the distinct identities were issued.
const TARGET_RSS_MIB: f64 = 32.0;
/// About the size of a leaf's TBSCertificate, as in `benches/issuance.rs`.
const FLOOR_MESSAGE_LEN: usize = 420;
/// Sign and verify operations per floor round.
const FLOOR_ITERATIONS: u32 = 2_000;
/// Floor rounds; the median round counts.
const FLOOR_ROUNDS: usize = 5;
/// Errors quoted in full.
const ERRORS_SHOWN: usize = 5;

#[derive(Parser, Debug)]
#[command(
    name = "certify-load",
    about = "Load generator for the identity service: throughput, latency, server CPU and RSS"
)]
struct Cli {
    /// Distinct identities (ServiceAccount, token, key and CSR each); with --tokens, at most
    /// this many lines of the file are used.
    #[arg(long, default_value_t = 10_000)]
    identities: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measured requests (cycling through the identities).
    #[arg(long, default_value_t = 50_000)]
    requests: usize,
    /// Run the measured phase for this many seconds instead of a number of requests.
    #[arg(long)]
    duration: Option<f64>,
    /// Unmeasured requests sent first (they issue identities too).
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Load an identity service that is already running at this gRPC address (needs --tokens).
    #[arg(long, requires = "tokens")]
    addr: Option<SocketAddr>,
    /// Its static token file (`token,namespace,serviceaccount` per line).
    #[arg(long, requires = "addr")]
    tokens: Option<PathBuf>,
    /// Its process id, for CPU time and RSS (without it, neither is reported).
    #[arg(long, requires = "addr")]
    server_pid: Option<u32>,
    /// The `identity-ca` binary to start (default: next to this executable).
    #[arg(long, conflicts_with = "addr")]
    server_bin: Option<PathBuf>,
    /// Worker threads of the spawned server's runtime (default: one per core).
    #[arg(long, conflicts_with = "addr")]
    server_worker_threads: Option<usize>,
    /// Trust domain of the identities.
    #[arg(long, default_value = "cluster.local")]
    identity_trust_domain: TrustDomain,
    /// Control-plane namespace of the identities.
    #[arg(long, default_value = "linkerd")]
    controller_namespace: Namespace,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(cli.identities > 0, "--identities must be at least 1");
    ensure!(cli.concurrency > 0, "--concurrency must be at least 1");
    ensure!(cli.connections > 0, "--connections must be at least 1");
    ensure!(cli.threads > 0, "--threads must be at least 1");
    if let Some(d) = cli.duration {
        ensure!(
            d.is_finite() && d > 0.0,
            "--duration must be a positive number of seconds"
        );
    }
    let mesh = Mesh::new(
        cli.identity_trust_domain.clone(),
        cli.controller_namespace.clone(),
    );

    let floor_before = Floor::measure().context("measuring the ring floor")?;
    floor_before.print("before the load");

    // Identities, then the server (spawned, or the one given), then one CSR per identity.
    let (target, identities) = match (&cli.addr, &cli.tokens) {
        (Some(addr), Some(tokens)) => {
            let identities = read_token_file(tokens, cli.identities)?;
            let target = Target {
                addr: *addr,
                pid: cli.server_pid,
                _server: None,
            };
            (target, identities)
        }
        _ => {
            let identities = generate_identities(cli.identities)?;
            let server = ServerProcess::spawn(&cli, &identities)?;
            let target = Target {
                addr: server.grpc_addr,
                pid: Some(server.child.id()),
                _server: Some(server),
            };
            (target, identities)
        }
    };
    let started = Instant::now();
    let requests = Arc::new(build_requests(&mesh, &identities)?);
    println!(
        "{} identities: keys and CSRs built in {:.2} s",
        requests.len(),
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads)
        .enable_all()
        .build()
        .context("building the runtime")?;
    let report = runtime.block_on(load(&cli, &target, Arc::clone(&requests)))?;
    let failures = report.measured.failures + report.warmup_failures;
    // The floor again, on the machine as it is now; the faster of the two counts.
    let floor_after = Floor::measure().context("measuring the ring floor")?;
    floor_after.print("after the load");
    let floor = if floor_after.sum_us() < floor_before.sum_us() {
        floor_after
    } else {
        floor_before
    };
    report.print(&cli, &floor, requests.len());
    ensure!(failures == 0, "{failures} requests failed");
    Ok(())
}

/// The ring floor: one ECDSA P-256 sign and one verify of a TBS-sized message.
struct Floor {
    sign_us: f64,
    verify_us: f64,
}

impl Floor {
    fn measure() -> Result<Self> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("P-256 key parsing failed"))?;
        let message = vec![0x5a; FLOOR_MESSAGE_LEN];
        let sig = key
            .sign(&rng, &message)
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_ASN1,
            key.public_key().as_ref().to_vec(),
        );
        let mut signs = Vec::with_capacity(FLOOR_ROUNDS);
        let mut verifies = Vec::with_capacity(FLOOR_ROUNDS);
        for _ in 0..FLOOR_ROUNDS {
            let t = Instant::now();
            for _ in 0..FLOOR_ITERATIONS {
                let s = key
                    .sign(&rng, std::hint::black_box(&message))
                    .map_err(|_| anyhow::anyhow!("signing failed"))?;
                std::hint::black_box(s);
            }
            signs.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(FLOOR_ITERATIONS));
            let t = Instant::now();
            for _ in 0..FLOOR_ITERATIONS {
                public
                    .verify(std::hint::black_box(&message), sig.as_ref())
                    .map_err(|_| anyhow::anyhow!("verification failed"))?;
            }
            verifies.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(FLOOR_ITERATIONS));
        }
        Ok(Self {
            sign_us: median(&mut signs),
            verify_us: median(&mut verifies),
        })
    }

    fn sum_us(&self) -> f64 {
        self.sign_us + self.verify_us
    }

    fn print(&self, when: &str) {
        println!(
            "ring floor {when}: t_sign {:.1} µs + t_verify {:.1} µs = {:.1} µs ({:.0} certifies/s per core)",
            self.sign_us,
            self.verify_us,
            self.sum_us(),
            1e6 / self.sum_us()
        );
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A workload: its ServiceAccount and its token.
struct Workload {
    sa: ServiceAccount,
    token: String,
}

/// `n` distinct ServiceAccounts `load/sa-00000`… with random tokens.
fn generate_identities(n: usize) -> Result<Vec<Workload>> {
    let rng = SystemRandom::new();
    let width = n.saturating_sub(1).to_string().len().max(5);
    (0..n)
        .map(|i| {
            let mut bytes = [0u8; 16];
            rng.fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("the system RNG failed"))?;
            Ok(Workload {
                sa: ServiceAccount::new("load", &format!("sa-{i:0width$}"))?,
                token: hex::encode(bytes),
            })
        })
        .collect()
}

/// The first `limit` entries of a static token file.
fn read_token_file(path: &Path, limit: usize) -> Result<Vec<Workload>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let mut workloads = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if workloads.len() == limit {
            break;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [token, namespace, name, ..] = fields[..] else {
            bail!(
                "{}, line {}: expected token,namespace,serviceaccount",
                path.display(),
                i + 1
            );
        };
        workloads.push(Workload {
            sa: ServiceAccount::new(namespace, name)
                .with_context(|| format!("{}, line {}", path.display(), i + 1))?,
            token: token.to_owned(),
        });
    }
    ensure!(!workloads.is_empty(), "{} lists no token", path.display());
    Ok(workloads)
}

/// One Certify request per workload, each with its own P-256 key; built on every core.
fn build_requests(mesh: &Mesh, workloads: &[Workload]) -> Result<Vec<CertifyRequest>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = workloads.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = workloads
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|w| certify_request(mesh, w))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut requests = Vec::with_capacity(workloads.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a CSR-building thread panicked"))??;
            requests.extend(part);
        }
        Ok(requests)
    })
}

fn certify_request(mesh: &Mesh, workload: &Workload) -> Result<CertifyRequest> {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
    let params = CsrParams::for_service_account(mesh, &workload.sa, SanMode::Dns)?;
    Ok(CertifyRequest {
        identity: mesh.identity(&workload.sa)?.to_string(),
        token: workload.token.clone().into_bytes(),
        certificate_signing_request: Csr::build(&key, &params)?.into_der(),
    })
}

/// The server under load.
struct Target {
    addr: SocketAddr,
    pid: Option<u32>,
    _server: Option<ServerProcess>,
}

/// A spawned `identity-ca`, killed (and its state folder removed) when dropped.
struct ServerProcess {
    child: Child,
    dir: PathBuf,
    grpc_addr: SocketAddr,
}

impl ServerProcess {
    fn spawn(cli: &Cli, workloads: &[Workload]) -> Result<Self> {
        let bin = match &cli.server_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe()
                .context("this executable's path")?
                .parent()
                .context("this executable's folder")?
                .join(format!("identity-ca{}", std::env::consts::EXE_SUFFIX)),
        };
        if !bin.exists() {
            bail!(
                "{} not found: run `cargo build --release --examples` first (or pass --server-bin)",
                bin.display()
            );
        }
        let dir = std::env::temp_dir().join(format!("meshid-certify-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dev = DevState::prepare(&dir, OffsetDateTime::now_utc())
            .with_context(|| format!("preparing the development state in {}", dir.display()))?;
        let tokens = dir.join("tokens.csv");
        let mut text = String::with_capacity(workloads.len() * 64);
        for w in workloads {
            text.push_str(&format!(
                "{},{},{}\n",
                w.token,
                w.sa.namespace().as_str(),
                w.sa.name()
            ));
        }
        std::fs::write(&tokens, text).with_context(|| format!("writing {}", tokens.display()))?;
        let grpc_addr = free_port()?;
        let admin_addr = free_port()?;
        let child = Command::new(&bin)
            .arg("--dev-dir")
            .arg(dev.dir())
            .arg("--addr")
            .arg(grpc_addr.to_string())
            .arg("--admin-addr")
            .arg(admin_addr.to_string())
            .arg("--identity-trust-domain")
            .arg(cli.identity_trust_domain.as_str())
            .arg("--controller-namespace")
            .arg(cli.controller_namespace.as_str())
            .arg("--token-validation")
            .arg(format!("static:{}", tokens.display()))
            .arg("--log-level")
            .arg("warn")
            .args(
                cli.server_worker_threads
                    .map(|n| vec!["--worker-threads".to_owned(), n.to_string()])
                    .unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Self {
            child,
            dir,
            grpc_addr,
        };
        server.wait_ready(admin_addr, Duration::from_secs(30))?;
        println!(
            "identity-ca (pid {}) ready on {grpc_addr}, {} static tokens",
            server.child.id(),
            workloads.len()
        );
        Ok(server)
    }

    /// Polls `GET /ready` on the admin port until it answers 200.
    fn wait_ready(&mut self, admin: SocketAddr, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("polling identity-ca")? {
                bail!("identity-ca exited before it was ready: {status}");
            }
            if http_ready(admin) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("identity-ca was not ready on http://{admin}/ready after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    listener.local_addr().context("finding a free port")
}

fn http_ready(admin: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&admin, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /ready HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200")
}

/// CPU time (user + system) of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    Ok(process::cpu_time(pid)?.as_secs_f64())
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
fn memory_mib(pid: u32) -> Result<(f64, f64)> {
    Ok(process::memory_mib(pid)?)
}

/// `/proc/loadavg`'s three load averages: other work on the machine skews every figure.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    Some(fields.join(" "))
}

/// What one phase of requests gave.
#[derive(Default)]
struct Phase {
    /// Latency of every successful request, in nanoseconds.
    latencies: Vec<u64>,
    failures: usize,
    errors: Vec<String>,
    wall: Duration,
}

/// How long a phase runs.
#[derive(Clone, Copy)]
enum Limit {
    Requests(usize),
    Until(Instant),
}

/// Sends requests `first`, `first + 1`, … (modulo the identities) with `concurrency` in flight.
async fn phase(
    clients: &[IdentityClient<Channel>],
    requests: &Arc<Vec<CertifyRequest>>,
    first: usize,
    limit: Limit,
    concurrency: usize,
) -> Result<(Phase, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let mut client = clients[w % clients.len()].clone();
        let requests = Arc::clone(requests);
        let next = Arc::clone(&next);
        let failures = Arc::clone(&failures);
        let errors = Arc::clone(&errors);
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                match limit {
                    Limit::Requests(n) if i >= n => break,
                    Limit::Until(deadline) if Instant::now() >= deadline => break,
                    _ => {}
                }
                let request = requests[(first + i) % requests.len()].clone();
                let sent = Instant::now();
                let outcome = client.certify(request).await;
                let elapsed = sent.elapsed();
                let error = match outcome {
                    Ok(response) if !response.get_ref().leaf_certificate.is_empty() => None,
                    Ok(_) => Some("a response without a leaf certificate".to_owned()),
                    Err(status) => Some(format!("{:?}: {}", status.code(), status.message())),
                };
                match error {
                    None => latencies.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)),
                    Some(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut errors) = errors.lock()
                            && errors.len() < ERRORS_SHOWN
                        {
                            errors.push(e);
                        }
                    }
                }
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = workers.join_next().await {
        latencies.extend(joined.context("a load task failed")?);
    }
    let wall = started.elapsed();
    let failures = failures.load(Ordering::Relaxed);
    let sent = latencies.len() + failures;
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    Ok((
        Phase {
            latencies,
            failures,
            errors,
            wall,
        },
        sent,
    ))
}

/// Everything measured.
struct Report {
    measured: Phase,
    warmup_failures: usize,
    warmup_errors: Vec<String>,
    /// Requests sent in all, warm-up included.
    total_sent: usize,
    server_cpu: Option<f64>,
    client_cpu: f64,
    memory: Option<(f64, f64)>,
}

async fn load(cli: &Cli, target: &Target, requests: Arc<Vec<CertifyRequest>>) -> Result<Report> {
    let endpoint = Endpoint::from_shared(format!("http://{}", target.addr))
        .context("the server address")?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mut clients = Vec::with_capacity(cli.connections);
    for _ in 0..cli.connections {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {}", target.addr))?;
        clients.push(IdentityClient::new(channel));
    }

    let (warmup, warmup_sent) = phase(
        &clients,
        &requests,
        0,
        Limit::Requests(cli.warmup),
        cli.concurrency,
    )
    .await?;

    let server_before = target.pid.map(cpu_seconds).transpose()?;
    let client_before = cpu_seconds(std::process::id())?;
    let limit = match cli.duration {
        Some(secs) => Limit::Until(Instant::now() + Duration::from_secs_f64(secs)),
        None => Limit::Requests(cli.requests),
    };
    let (measured, measured_sent) =
        phase(&clients, &requests, warmup_sent, limit, cli.concurrency).await?;
    let server_after = target.pid.map(cpu_seconds).transpose()?;
    let client_cpu = cpu_seconds(std::process::id())? - client_before;
    let memory = target.pid.map(memory_mib).transpose()?;

    Ok(Report {
        measured,
        warmup_failures: warmup.failures,
        warmup_errors: warmup.errors,
        total_sent: warmup_sent + measured_sent,
        server_cpu: server_before.zip(server_after).map(|(b, a)| a - b),
        client_cpu,
        memory,
    })
}

impl Report {
    fn print(mut self, cli: &Cli, floor: &Floor, identities: usize) {
        let m = &mut self.measured;
        let ok = m.latencies.len();
        let wall = m.wall.as_secs_f64();
        let throughput = ok as f64 / wall;
        m.latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            let n = m.latencies.len();
            if n == 0 {
                return f64::NAN;
            }
            let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            m.latencies[idx] as f64 / 1e6
        };
        println!(
            "load: {} in flight over {} connection(s), {} client thread(s), {} warm-up requests",
            cli.concurrency, cli.connections, cli.threads, cli.warmup
        );
        println!(
            "requests      {} ok, {} failed (warm-up: {} failed)",
            ok, m.failures, self.warmup_failures
        );
        for e in self.warmup_errors.iter().chain(&m.errors) {
            println!("  error: {e}");
        }
        println!("wall time     {wall:.3} s");
        println!("throughput    {throughput:.0} certifies/s");
        println!(
            "latency       p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(1.0)
        );
        let per_certify_us = |cpu: f64| {
            if ok == 0 {
                f64::NAN
            } else {
                cpu * 1e6 / ok as f64
            }
        };
        let ratio = self.server_cpu.map(|cpu| {
            let us = per_certify_us(cpu);
            let ratio = us / floor.sum_us();
            println!(
                "server CPU    {cpu:.2} s ({:.2} cores); per certify: {us:.1} µs = {ratio:.2} × (t_sign + t_verify)",
                cpu / wall
            );
            ratio
        });
        println!(
            "client CPU    {:.2} s ({:.2} cores); per certify: {:.1} µs",
            self.client_cpu,
            self.client_cpu / wall,
            per_certify_us(self.client_cpu)
        );
        if let Some(cpu) = self.server_cpu {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let us = per_certify_us(cpu + self.client_cpu);
            println!(
                "CPU-bound     {us:.1} µs of CPU per certify (server + client): at most {:.0} \
                 certifies/s on {cores} idle cores",
                cores as f64 * 1e6 / us
            );
        }
        if let Some(load) = load_average() {
            println!("machine load  {load} (1, 5, 15 min averages at the end)");
        }
        let distinct = self.total_sent.min(identities);
        if let Some((rss, peak)) = self.memory {
            println!(
                "server RSS    {rss:.1} MiB after {distinct} distinct identities (peak {peak:.1} MiB)"
            );
        }
        println!("targets");
        let mark = |good: bool, bad: &'static str| if good { "ok" } else { bad };
        println!(
            "  throughput ≥ {TARGET_THROUGHPUT:.0}/s: {throughput:.0}/s  {}",
            mark(throughput >= TARGET_THROUGHPUT, "LOW")
        );
        match ratio {
            Some(r) => println!(
                "  server CPU per certify ≤ {TARGET_CPU_RATIO} × floor: {r:.2} ×  {}",
                mark(r <= TARGET_CPU_RATIO, "HIGH")
            ),
            None => println!("  server CPU per certify: not measured (no --server-pid)"),
        }
        match self.memory {
            Some((rss, _)) if distinct >= 10_000 => println!(
                "  server RSS ≤ {TARGET_RSS_MIB} MiB after 10,000 identities: {rss:.1} MiB  {}",
                mark(rss <= TARGET_RSS_MIB, "HIGH")
            ),
            Some(_) => println!(
                "  server RSS: only {distinct} distinct identities issued (the target is for 10,000)"
            ),
            None => println!("  server RSS: not measured (no --server-pid)"),
        }
    }
}
