//! The pod-start storm: thousands of new proxies, each with its own key, CSR, token and
//! connection, all starting within a second, against an `identity-ca` process that validates
//! tokens with TokenReview or offline.
#![allow(clippy::disallowed_methods)] // a load generator reads the clock

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use meshid_authn::PodRef;
use meshid_client::{Certifier as _, CertifyRequest};
use meshid_csr::{Csr, CsrParams, KeyPair};
use meshid_grpc::{GrpcCertifier, Timeouts, TlsMode, identity_service_name};
use meshid_kube_testing::ClusterDouble;
use meshid_kube_testing::cluster::TokenParams;
use meshid_policy::{Clock as _, KeyAlgorithm, Mesh, SanMode, ServiceAccount, SystemClock};
use meshid_rotation::{Backoff, BackoffPolicy, JitterSource as _, RefreshPolicy, SeededJitter};
use meshid_server::dev::DevState;
use meshid_verify::TrustBundle;
use ring::rand::{SecureRandom as _, SystemRandom};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::Error;
use crate::floor::Floor;
use crate::process::{ServerProcess, sibling_binary};

/// Target: offline, every proxy certified within this long of the storm's start.
pub const TARGET_OFFLINE_SECONDS: f64 = 4.0;
/// Target: offline over h2c, server CPU per certify at most this multiple of the floor.
pub const TARGET_OFFLINE_CPU_RATIO: f64 = 2.0;
/// Target: offline, the server's peak RSS in MiB.
pub const TARGET_OFFLINE_RSS_MIB: f64 = 64.0;
/// Target: TokenReview, all certified within this multiple of `(N − burst) / QPS`.
pub const TARGET_REVIEW_SLACK: f64 = 1.15;
/// Target: renewals per minute, peak over mean.
pub const TARGET_HERD_PEAK_TO_MEAN: f64 = 1.5;

/// How tokens are validated by the identity service under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Validation {
    /// `--token-validation tokenreview`: one TokenReview per new token.
    Tokenreview,
    /// `--token-validation oidc`: offline with the cluster's published keys.
    Oidc,
}

impl Validation {
    fn flag(self) -> &'static str {
        match self {
            Self::Tokenreview => "tokenreview",
            Self::Oidc => "oidc",
        }
    }
}

/// How proxies reach the identity service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Plaintext HTTP/2.
    H2c,
    /// TLS 1.3, the identity service proving its own name.
    Tls,
}

/// The storm's command line.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "storm",
    about = "A pod-start storm against identity-ca: N new proxies at once, TokenReview vs \
             offline token validation"
)]
#[non_exhaustive]
pub struct StormArgs {
    /// Simulated proxies (each its own key, CSR, token and connection).
    #[arg(long, default_value_t = 10_000)]
    pub proxies: usize,
    /// Token validation modes to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tokenreview,oidc"
    )]
    pub validation: Vec<Validation>,
    /// Transports to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "h2c,tls")]
    pub transport: Vec<Transport>,
    /// Every proxy starts at a random moment within this window (milliseconds).
    #[arg(long, default_value_t = 1_000)]
    pub start_window_ms: u64,
    /// How long the API server double takes to answer one TokenReview (milliseconds).
    #[arg(long, default_value_t = 2)]
    pub review_latency_ms: u64,
    /// TokenReview requests per second (Linkerd's chart: 100).
    #[arg(long, default_value_t = 100.0)]
    pub qps: f64,
    /// TokenReview burst (Linkerd's chart: 200).
    #[arg(long, default_value_t = 200)]
    pub burst: u32,
    /// A proxy that is not certified this long after it started counts as a failure (seconds).
    #[arg(long, default_value_t = 600)]
    pub give_up_after_secs: u64,
    /// Worker threads of the identity service (default: one per core).
    #[arg(long)]
    pub server_worker_threads: Option<usize>,
    /// The identity-ca binary (default: next to this executable).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
}

/// What one storm measured.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StormReport {
    /// Token validation.
    pub validation: Validation,
    /// Transport.
    pub transport: Transport,
    /// Proxies.
    pub proxies: usize,
    /// Proxies certified.
    pub certified: usize,
    /// Proxies that gave up.
    pub failures: usize,
    /// The first few failures' last errors.
    pub failure_samples: Vec<String>,
    /// Why calls were retried: each distinct error and how often.
    pub retry_reasons: BTreeMap<String, u64>,
    /// Certify calls made (retries included).
    pub calls: u64,
    /// From the storm's start until the last proxy was certified.
    pub all_certified: Duration,
    /// Per proxy, from its start until it was certified: the median.
    pub p50: Duration,
    /// ... and the 99th percentile.
    pub p99: Duration,
    /// The identity service's CPU time during the storm.
    pub server_cpu: Duration,
    /// The identity service's peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// TokenReviews the API server answered during the storm.
    pub reviews: u64,
    /// The ring floor measured in the same run.
    pub floor: Floor,
    /// Renewals per minute that meshid-rotation schedules for the certified proxies.
    pub renewals: Herd,
    /// The QPS and burst the identity service was given.
    pub qps: f64,
    /// The burst.
    pub burst: u32,
}

/// How renewals spread over time.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Herd {
    /// The busiest minute's renewals.
    pub peak_per_minute: usize,
    /// Renewals per minute, averaged over the minutes from the first to the last.
    pub mean_per_minute: f64,
    /// Minutes from the first renewal to the last.
    pub minutes: usize,
}

impl Herd {
    /// Buckets `times` by minute.
    pub fn of(times: &[OffsetDateTime]) -> Self {
        let mut buckets: BTreeMap<i64, usize> = BTreeMap::new();
        for t in times {
            *buckets
                .entry(t.unix_timestamp().div_euclid(60))
                .or_default() += 1;
        }
        let minutes = match (buckets.keys().next(), buckets.keys().next_back()) {
            (Some(first), Some(last)) => usize::try_from(last - first + 1).unwrap_or(usize::MAX),
            _ => 0,
        };
        Self {
            peak_per_minute: buckets.values().copied().max().unwrap_or(0),
            mean_per_minute: if minutes == 0 {
                0.0
            } else {
                times.len() as f64 / minutes as f64
            },
            minutes,
        }
    }

    /// Peak over mean (0 for no renewals).
    pub fn peak_to_mean(&self) -> f64 {
        if self.mean_per_minute > 0.0 {
            self.peak_per_minute as f64 / self.mean_per_minute
        } else {
            0.0
        }
    }
}

impl StormReport {
    /// Server CPU per certify, µs.
    pub fn cpu_per_certify_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.certified.max(1) as f64
    }

    /// The floor, the same for both modes so they compare: `t_sign + t_verify +
    /// t_token_verify` (with TokenReview the token is verified by the API server instead).
    pub fn floor_us(&self) -> f64 {
        self.floor.issue_with_token_us()
    }

    /// The TokenReview target: `(N − burst) / QPS`, times the allowed slack.
    pub fn review_target(&self) -> Duration {
        let n = self.proxies.saturating_sub(self.burst as usize) as f64;
        Duration::from_secs_f64(TARGET_REVIEW_SLACK * n / self.qps)
    }

    /// The report, as printed.
    pub fn render(&self) -> String {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let mode = match self.validation {
            Validation::Tokenreview => format!(
                "TokenReview (QPS {}, burst {}), {:?}",
                self.qps, self.burst, self.transport
            ),
            Validation::Oidc => format!("offline (oidc), {:?}", self.transport),
        };
        let mut out = format!("== storm: {} proxies, {mode}\n", self.proxies);
        let all = self.all_certified.as_secs_f64();
        let target = match self.validation {
            Validation::Oidc => format!(
                "target ≤ {TARGET_OFFLINE_SECONDS} s: {}",
                verdict(self.failures == 0 && all <= TARGET_OFFLINE_SECONDS)
            ),
            Validation::Tokenreview => {
                let t = self.review_target().as_secs_f64();
                format!(
                    "target ≤ {TARGET_REVIEW_SLACK} × (N − burst) / QPS = {t:.1} s: {}",
                    verdict(self.failures == 0 && all <= t)
                )
            }
        };
        out.push_str(&format!(
            "all certified in {all:.2} s ({target})\nper proxy: p50 {:.3} s, p99 {:.3} s; \
             failures {}; Certify calls {} ({} retries); TokenReviews {}\n",
            self.p50.as_secs_f64(),
            self.p99.as_secs_f64(),
            self.failures,
            self.calls,
            self.calls.saturating_sub(self.certified as u64),
            self.reviews,
        ));
        for sample in &self.failure_samples {
            out.push_str(&format!("  failure: {sample}\n"));
        }
        for (reason, count) in &self.retry_reasons {
            out.push_str(&format!("  retried {count}×: {reason}\n"));
        }
        let f = &self.floor;
        let floor = self.floor_us();
        let ratio = self.cpu_per_certify_us() / floor;
        let cpu_target = match (self.validation, self.transport) {
            (Validation::Oidc, Transport::H2c) => format!(
                " (target ≤ {TARGET_OFFLINE_CPU_RATIO}: {})",
                verdict(ratio <= TARGET_OFFLINE_CPU_RATIO)
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "server CPU per certify {:.1} µs = {ratio:.2} × floor (t_sign {:.1} + t_verify {:.1} + \
             t_token_verify {:.1} = {floor:.1} µs){cpu_target}\n",
            self.cpu_per_certify_us(),
            f.sign_us,
            f.verify_us,
            f.token_verify_us,
        ));
        let rss_target = match self.validation {
            Validation::Oidc => format!(
                " (target ≤ {TARGET_OFFLINE_RSS_MIB} MiB: {})",
                verdict(self.peak_rss_mib <= TARGET_OFFLINE_RSS_MIB)
            ),
            Validation::Tokenreview => String::new(),
        };
        out.push_str(&format!(
            "server peak RSS {:.1} MiB{rss_target}\n",
            self.peak_rss_mib
        ));
        let h = &self.renewals;
        out.push_str(&format!(
            "renewals: peak {}/min, mean {:.1}/min over {} min: peak-to-mean {:.2} (target ≤ \
             {TARGET_HERD_PEAK_TO_MEAN}: {})\n",
            h.peak_per_minute,
            h.mean_per_minute,
            h.minutes,
            h.peak_to_mean(),
            verdict(h.peak_to_mean() <= TARGET_HERD_PEAK_TO_MEAN)
        ));
        out
    }
}

/// Runs the storm `args` describe and prints each report, then the speed-up of offline
/// validation over TokenReview per transport. For `examples/storm.rs`.
pub fn main(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let args = match StormArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("storm: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args, |report| println!("{}", report.render()))) {
        Ok(reports) => {
            for transport in [Transport::H2c, Transport::Tls] {
                let time = |v: Validation| {
                    reports
                        .iter()
                        .find(|r| r.validation == v && r.transport == transport)
                        .map(|r| r.all_certified.as_secs_f64())
                };
                if let (Some(review), Some(offline)) =
                    (time(Validation::Tokenreview), time(Validation::Oidc))
                {
                    println!(
                        "storm speed-up over {transport:?}: TokenReview {review:.2} s / offline \
                         {offline:.2} s = {:.1}×",
                        review / offline
                    );
                }
            }
            if reports.iter().all(|r| r.failures == 0) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("storm: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One simulated proxy: what it sends.
struct Proxy {
    identity: String,
    token: Zeroizing<Vec<u8>>,
    csr: Vec<u8>,
}

impl Proxy {
    fn request(&self) -> CertifyRequest {
        CertifyRequest::new(self.identity.clone(), self.token.clone(), self.csr.clone())
    }
}

/// Runs every (validation, transport) pair of `args`, calling `each` with each report.
pub async fn run(
    args: &StormArgs,
    mut each: impl FnMut(&StormReport),
) -> Result<Vec<StormReport>, Error> {
    if args.proxies == 0 || args.qps.is_nan() || args.qps <= 0.0 || args.burst == 0 {
        return Err(Error::Setup {
            reason: "--proxies, --qps and --burst must be positive".to_owned(),
        });
    }
    let floor = Floor::measure()?;
    let dir = tempfile::Builder::new()
        .prefix("meshid-storm-")
        .tempdir()
        .map_err(|e| Error::Setup {
            reason: format!("creating a scratch folder: {e}"),
        })?;
    let now = SystemClock.now();
    let dev = DevState::prepare(dir.path().join("dev"), now).map_err(|e| Error::Setup {
        reason: format!("development issuer: {e}"),
    })?;
    let bundle_pem = std::fs::read(dev.trust_anchors()).map_err(|e| Error::Setup {
        reason: format!("reading the trust anchors: {e}"),
    })?;
    let bundle = TrustBundle::from_pem(&bundle_pem).map_err(|e| Error::Setup {
        reason: format!("trust anchors: {e}"),
    })?;
    let cluster = ClusterDouble::builder()
        .review_latency(Duration::from_millis(args.review_latency_ms))
        .start()
        .await;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig("identity-service-token")).map_err(|e| {
        Error::Setup {
            reason: format!("writing the kubeconfig: {e}"),
        }
    })?;
    let mesh = Mesh::default();
    let proxies = Arc::new(proxies(&mesh, &cluster, args.proxies, now)?);
    let bin = match &args.server_bin {
        Some(bin) => bin.clone(),
        None => sibling_binary("identity-ca")?,
    };
    let mut reports = Vec::new();
    for &validation in &args.validation {
        for &transport in &args.transport {
            let mut server_args: Vec<String> = [
                "--dev-dir",
                &dev.dir().display().to_string(),
                "--addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
                "--token-validation",
                validation.flag(),
                "--kubeconfig",
                &kubeconfig.display().to_string(),
                "--kube-apiclient-qps",
                &args.qps.to_string(),
                "--kube-apiclient-burst",
                &args.burst.to_string(),
                "--tls",
                if transport == Transport::Tls {
                    "on"
                } else {
                    "off"
                },
                "--log-level",
                "info",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            if let Some(n) = args.server_worker_threads {
                server_args.extend(["--worker-threads".to_owned(), n.to_string()]);
            }
            let server = ServerProcess::spawn(&bin, &server_args, Duration::from_secs(60))?;
            let report = storm(
                args,
                &server,
                &cluster,
                &proxies,
                (validation, transport),
                &mesh,
                &bundle,
                floor,
            )
            .await?;
            each(&report);
            reports.push(report);
        }
    }
    Ok(reports)
}

/// Makes `n` proxies: ServiceAccounts spread over ten namespaces, one pod and token each.
fn proxies(
    mesh: &Mesh,
    cluster: &ClusterDouble,
    n: usize,
    now: OffsetDateTime,
) -> Result<Vec<Proxy>, Error> {
    let setup = |what: &str, e: &dyn std::fmt::Display| Error::Setup {
        reason: format!("{what}: {e}"),
    };
    (0..n)
        .map(|i| {
            let sa = ServiceAccount::new(&format!("ns-{}", i % 10), &format!("sa-{}", i % 100))
                .map_err(|e| setup("ServiceAccount", &e))?;
            let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).map_err(|e| setup("key", &e))?;
            let params = CsrParams::for_service_account(mesh, &sa, SanMode::Dns)
                .map_err(|e| setup("CSR", &e))?;
            let csr = Csr::build(&key, &params).map_err(|e| setup("CSR", &e))?;
            let mut token = TokenParams::new(sa.clone(), now);
            token.pod = Some(PodRef::new(format!("pod-{i}"), format!("uid-{i}")));
            let token = cluster.token(&token);
            let identity = mesh.identity(&sa).map_err(|e| setup("identity", &e))?;
            Ok(Proxy {
                identity: identity.to_string(),
                token: Zeroizing::new(token.into_bytes()),
                csr: csr.into_der(),
            })
        })
        .collect()
}

/// What one proxy ended with.
struct Outcome {
    /// When it was certified (or gave up), from the storm's start.
    done: Duration,
    /// From its own start.
    latency: Duration,
    calls: u64,
    /// The errors that were retried.
    retried: Vec<String>,
    /// The leaf's validity, when certified.
    validity: Option<(OffsetDateTime, OffsetDateTime)>,
    error: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn storm(
    args: &StormArgs,
    server: &ServerProcess,
    cluster: &ClusterDouble,
    proxies: &Arc<Vec<Proxy>>,
    (validation, transport): (Validation, Transport),
    mesh: &Mesh,
    bundle: &TrustBundle,
    floor: Floor,
) -> Result<StormReport, Error> {
    let scheme = match transport {
        Transport::H2c => "http",
        Transport::Tls => "https",
    };
    let addr = format!("{scheme}://{}", server.grpc_addr());
    let name = identity_service_name(mesh).map_err(|e| Error::Setup {
        reason: format!("the identity service's name: {e}"),
    })?;
    let rng = SystemRandom::new();
    let mut seed = [0u8; 8];
    rng.fill(&mut seed).map_err(|_| Error::Setup {
        reason: "the system random source failed".to_owned(),
    })?;
    let mut starts = SeededJitter::new(u64::from_le_bytes(seed));
    let window = Duration::from_millis(args.start_window_ms);
    let give_up = Duration::from_secs(args.give_up_after_secs);

    // Let every task be spawned before the first starts.
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let reviews_before = cluster.reviews();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..proxies.len() {
        let start = t0 + window.mul_f64(starts.unit());
        let seed = starts.next_u64();
        let (proxies, addr, name, bundle) = (
            Arc::clone(proxies),
            addr.clone(),
            name.clone(),
            bundle.clone(),
        );
        tasks.spawn(async move {
            tokio::time::sleep_until(start).await;
            let began = Instant::now();
            let mut outcome = proxy(&addr, &name, bundle, &proxies[i], seed, give_up).await;
            outcome.latency = began.elapsed();
            outcome.done = start.duration_since(t0) + outcome.latency;
            outcome
        });
    }
    let cpu_before = {
        tokio::time::sleep_until(t0).await;
        server.cpu()?
    };
    let mut outcomes = Vec::with_capacity(proxies.len());
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.map_err(|e| Error::Setup {
            reason: format!("a proxy task failed: {e}"),
        })?);
    }
    let server_cpu = server.cpu()?.saturating_sub(cpu_before);
    let (_, peak_rss_mib) = server.memory_mib()?;

    let certified: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_none()).collect();
    let mut latencies: Vec<f64> = certified.iter().map(|o| o.latency.as_secs_f64()).collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        Duration::from_secs_f64(latencies.get(i).copied().unwrap_or(0.0))
    };
    // What meshid-rotation schedules for each certified proxy, each with its own jitter.
    let policy = RefreshPolicy::default();
    let mut renewals = Vec::with_capacity(certified.len());
    for (i, o) in certified.iter().enumerate() {
        if let Some((not_before, not_after)) = o.validity {
            let mut jitter = SeededJitter::new(starts.next_u64() ^ i as u64);
            let at = policy
                .refresh_at(not_before, not_after, not_before, &mut jitter)
                .map_err(|e| Error::Setup {
                    reason: format!("refresh schedule: {e}"),
                })?;
            renewals.push(at);
        }
    }
    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    let mut retry_reasons = BTreeMap::new();
    for reason in outcomes.iter().flat_map(|o| &o.retried) {
        *retry_reasons.entry(reason.clone()).or_default() += 1;
    }
    Ok(StormReport {
        validation,
        transport,
        proxies: proxies.len(),
        certified: certified.len(),
        failures: failures.len(),
        failure_samples: failures
            .iter()
            .take(3)
            .filter_map(|o| o.error.clone())
            .collect(),
        retry_reasons,
        calls: outcomes.iter().map(|o| o.calls).sum(),
        all_certified: certified.iter().map(|o| o.done).max().unwrap_or_default(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        server_cpu,
        peak_rss_mib,
        reviews: cluster.reviews() - reviews_before,
        floor,
        renewals: Herd::of(&renewals),
        qps: args.qps,
        burst: args.burst,
    })
}

/// One proxy: connect (its own connection), certify, and on a refusal back off as
/// meshid-rotation says and try again, until certified or `give_up` has passed.
async fn proxy(
    addr: &str,
    name: &str,
    bundle: TrustBundle,
    sent: &Proxy,
    seed: u64,
    give_up: Duration,
) -> Outcome {
    let began = Instant::now();
    let mut outcome = Outcome {
        done: Duration::ZERO,
        latency: Duration::ZERO,
        calls: 0,
        retried: Vec::new(),
        validity: None,
        error: None,
    };
    let timeouts = Timeouts::new(Duration::from_secs(10), Duration::from_secs(30));
    let certifier = match GrpcCertifier::connect_identity_service(
        addr,
        TlsMode::Auto,
        name,
        bundle,
        SystemClock,
        timeouts,
    )
    .await
    {
        Ok((certifier, _)) => certifier,
        Err(e) => {
            outcome.error = Some(format!("connect: {e}"));
            return outcome;
        }
    };
    let mut backoff = match Backoff::new(BackoffPolicy::default()) {
        Ok(b) => b,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    let mut jitter = SeededJitter::new(seed);
    loop {
        outcome.calls += 1;
        let error = match certifier.certify(sent.request()).await {
            Ok(response) => match validity(response.leaf.as_ref()) {
                Some(validity) => {
                    outcome.validity = Some(validity);
                    return outcome;
                }
                None => "the leaf does not parse".to_owned(),
            },
            Err(e) => e.to_string(),
        };
        let delay = backoff.next_delay(SystemClock.now(), None, &mut jitter);
        if began.elapsed() + delay > give_up {
            outcome.error = Some(error);
            return outcome;
        }
        // The service's request ids make every refusal distinct; the reason is what counts.
        let reason = match error.find("; request id ") {
            Some(at) => format!("{}; request id …", &error[..at]),
            None => error,
        };
        outcome.retried.push(reason);
        tokio::time::sleep(delay).await;
    }
}

/// A certificate's NotBefore and NotAfter.
fn validity(der: &[u8]) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let v = cert.validity();
    Some((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn herd_is_peak_over_mean_per_minute() {
        let t = datetime!(2026-06-01 12:00 UTC);
        // Minutes 0..4: 1, 3, 0, 2 renewals: 6 over 4 minutes, peak 3.
        let times: Vec<_> = [0, 61, 62, 119, 185, 230]
            .iter()
            .map(|s| t + Duration::from_secs(*s))
            .collect();
        let herd = Herd::of(&times);
        assert_eq!(herd.peak_per_minute, 3);
        assert_eq!(herd.minutes, 4);
        assert!((herd.mean_per_minute - 1.5).abs() < 1e-9);
        assert!((herd.peak_to_mean() - 2.0).abs() < 1e-9);
        assert_eq!(Herd::of(&[]).peak_to_mean(), 0.0);
    }

    #[test]
    fn the_review_target_is_the_rate_limited_time_with_slack() {
        let report = StormReport {
            validation: Validation::Tokenreview,
            transport: Transport::H2c,
            proxies: 10_000,
            certified: 10_000,
            failures: 0,
            failure_samples: Vec::new(),
            retry_reasons: BTreeMap::new(),
            calls: 10_000,
            all_certified: Duration::from_secs(100),
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            server_cpu: Duration::from_secs(2),
            peak_rss_mib: 50.0,
            reviews: 10_000,
            floor: Floor {
                sign_us: 20.0,
                verify_us: 60.0,
                token_verify_us: 60.0,
            },
            renewals: Herd::of(&[]),
            qps: 100.0,
            burst: 200,
        };
        // 1.15 × (10,000 − 200) / 100 = 112.7 s.
        assert!((report.review_target().as_secs_f64() - 112.7).abs() < 1e-6);
        assert!((report.cpu_per_certify_us() - 200.0).abs() < 1e-9);
        assert!((report.floor_us() - 140.0).abs() < 1e-9);
        let text = report.render();
        assert!(
            text.contains(
                "all certified in 100.00 s (target ≤ 1.15 × (N − burst) / QPS = 112.7 s: met)"
            ),
            "{text}"
        );
        assert!(
            text.contains("200.0 µs = 1.43 × floor (t_sign 20.0 + t_verify 60.0 + t_token_verify 60.0 = 140.0 µs)"),
            "{text}"
        );
    }
}
