//! The example binaries, run as processes: `mesh-demo` tells its story, two `proxy`
//! processes carry bytes over mTLS after being certified by the identity service, and a small
//! `storm` certifies every proxy in both token-validation modes.
//!
//! Cargo gives integration tests no path to example binaries, so they are looked up next to
//! this test's own binary (`target/<profile>/examples/`). `cargo test` builds them; when only
//! this test is selected (`cargo test --test examples`), build them first with
//! `cargo build --examples`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use meshid::authn::DEFAULT_AUDIENCE;
use meshid::policy::ServiceAccount;
use meshid::server::dev::{DEV_TOKEN_ISSUER, DevState};
use meshid::server::serve::{ServeConfig, TokenValidation, start};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const EMOJI: &str = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local";

/// The path of an example binary built by the same `cargo test`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example binary {} not found: `cargo test` builds the examples, but \
         `cargo test --test examples` alone does not; run `cargo build --examples` first",
        path.display()
    );
    path
}

/// A fresh scratch folder for one test, removed when the returned value is dropped. Bind it
/// before any [`Process`] that works in it: locals are dropped in reverse order, so each child
/// is killed and reaped before its folder goes.
fn scratch(test: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("meshid-examples-{test}-"))
        .tempdir()
        .unwrap()
}

/// A child process whose output goes to a file, killed when dropped (on failure too).
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, program: &Path, flags: &[(&str, &str)], dir: &Path) -> Self {
        let args: Vec<&str> = flags
            .iter()
            .flat_map(|(flag, value)| [*flag, *value])
            .collect();
        Self::spawn_args(name, program, &args, dir)
    }

    fn spawn_args(name: &str, program: &Path, args: &[&str], dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the process's output if it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited early ({status}):\n{}", self.name, self.output());
        }
    }

    /// The address a process logged it bound: the value of `key=` on its first log line that
    /// contains `message`. Waits for the line; panics with the output if the process exits or
    /// `timeout` passes first. Processes are given port 0 and say which port they got, so no
    /// port is picked here and released for a child to bind (another process could take it).
    async fn logged_addr(&mut self, message: &str, key: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let prefix = format!("{key}=");
        loop {
            let output = self.output();
            let found = output
                .lines()
                .filter(|line| line.contains(message))
                .find_map(|line| {
                    line.split_whitespace()
                        .find_map(|field| field.strip_prefix(&prefix))
                        .map(str::to_owned)
                });
            if let Some(addr) = found {
                return addr;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{} logged no \"{message}\" with {key}= within {timeout:?}:\n{output}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit, killing it after `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit within {timeout:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the process's admin server answers `/ready` with 200; panics with its
    /// output if it exits or `timeout` passes first.
    async fn wait_ready(&mut self, admin: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            if http_get(admin, "/ready")
                .await
                .is_some_and(|(status, _)| status == 200)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within {timeout:?}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the process to stop (SIGTERM), as an orchestrator would.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mesh_demo_prints_observed_edges() {
    let dir = scratch("mesh-demo");
    let mut demo = Process::spawn("mesh-demo", &example("mesh-demo"), &[], dir.path());
    let status = demo.wait(Duration::from_secs(60));
    let output = demo.output();
    assert!(status.success(), "mesh-demo failed ({status}):\n{output}");

    let lines: Vec<Vec<&str>> = output
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert!(
        lines.contains(&vec![
            "SRC",
            "DST",
            "SRC_NS",
            "DST_NS",
            "SECURED",
            "CLIENT_ID",
            "SERVER_ID"
        ]),
        "no edges header:\n{output}"
    );
    for dst in ["emoji", "voting"] {
        assert!(
            lines.contains(&vec![
                "web",
                dst,
                "emojivoto",
                "emojivoto",
                "√",
                "dns",
                "dns"
            ]),
            "no secured web → {dst} row:\n{output}"
        );
        let identities = format!(
            "web → {dst}: client_id={WEB} server_id={dst}.emojivoto.serviceaccount.identity.linkerd.cluster.local"
        );
        assert!(
            output.contains(&identities),
            "no peer identities for web → {dst}:\n{output}"
        );
    }
    // vote-bot got its identity over the Workload API and knows voting by SPIFFE ID; voting,
    // Linkerd-style, knows vote-bot by identity name.
    assert!(
        lines.contains(&vec![
            "vote-bot",
            "voting",
            "emojivoto",
            "emojivoto",
            "√",
            "dns",
            "spiffe"
        ]),
        "no secured vote-bot → voting row:\n{output}"
    );
    assert!(
        output.contains(
            "vote-bot → voting: client_id=vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local server_id=spiffe://cluster.local/ns/emojivoto/sa/voting"
        ),
        "no peer identities for vote-bot → voting:\n{output}"
    );
}

#[test]
fn proxy_refuses_bad_flags_in_one_line() {
    let proxy = example("proxy");
    for args in [
        &["--trust-anchors", "anchors.pem", "--token", "t"][..],
        &[
            "--trust-anchors",
            "a.pem",
            "--identity",
            "x",
            "--token",
            "t",
            "--inbound",
            "127.0.0.1:0",
        ],
        &[
            "--trust-anchors",
            "/nonexistent.pem",
            "--identity",
            "x",
            "--token",
            "t",
        ],
    ] {
        let output = Command::new(&proxy)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("proxy: "), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_carry_bytes_over_mtls() {
    let proxy = example("proxy");
    let dir = scratch("proxy");

    // The identity service, in process, on ephemeral ports.
    let now = OffsetDateTime::now_utc();
    let dev = DevState::prepare(dir.path().join("ca"), now).unwrap();
    let mut config = ServeConfig::new(
        dev.issuer_folder(),
        Some(dev.trust_anchors()),
        TokenValidation::Jwks(dev.jwks()),
    );
    config.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.jwt_issuers = vec![DEV_TOKEN_ISSUER.to_owned()];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ca = start(config, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let token = |name: &str| {
        let sa = ServiceAccount::new("emojivoto", name).unwrap();
        dev.token(&sa, DEFAULT_AUDIENCE, Duration::from_secs(3600), now)
            .unwrap()
    };
    let emoji_token = dir.path().join("emoji.token");
    std::fs::write(&emoji_token, token("emoji")).unwrap();

    // The emoji application: an echo server.
    let app = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = app.accept().await {
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });

    // Every listener on port 0; each address is read from the log line that reports it.
    let any_port = "127.0.0.1:0";
    let grpc = ca.grpc_addr.to_string();
    let anchors = dev.trust_anchors().display().to_string();
    let emoji_token = emoji_token.display().to_string();
    let mut emoji = Process::spawn(
        "emoji-proxy",
        &proxy,
        &[
            ("--identity-addr", &grpc),
            ("--trust-anchors", &anchors),
            ("--namespace", "emojivoto"),
            ("--service-account", "emoji"),
            ("--token-file", &emoji_token),
            ("--inbound", any_port),
            ("--app", &app_addr),
            ("--admin-addr", any_port),
        ],
        dir.path(),
    );
    let within = Duration::from_secs(30);
    let emoji_admin = emoji.logged_addr("proxy starting", "admin", within).await;
    // The inbound proxy starts once certified.
    let emoji_inbound = emoji.logged_addr("inbound proxy", "inbound", within).await;
    let web_token = token("web");
    let mut web = Process::spawn(
        "web-proxy",
        &proxy,
        &[
            ("--identity-addr", &grpc),
            ("--trust-anchors", &anchors),
            ("--identity", WEB),
            ("--token", &web_token),
            ("--outbound", any_port),
            ("--peer", &emoji_inbound),
            ("--peer-identity", EMOJI),
            ("--admin-addr", any_port),
        ],
        dir.path(),
    );
    let web_admin = web.logged_addr("proxy starting", "admin", within).await;

    // Both become ready once certified.
    emoji
        .wait_ready(&emoji_admin, Duration::from_secs(15))
        .await;
    web.wait_ready(&web_admin, Duration::from_secs(15)).await;
    let (status, metrics) = http_get(&web_admin, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("identity_cert_expiration_timestamp_seconds"),
        "{metrics}"
    );
    assert_eq!(http_get(&web_admin, "/live").await.unwrap().0, 200);
    let web_outbound = web.logged_addr("outbound proxy", "outbound", within).await;

    // web's application talks plain TCP to its proxy; the bytes come back from emoji's app.
    let mut conn = TcpStream::connect(&web_outbound).await.unwrap();
    conn.write_all(b"hello over mtls\n").await.unwrap();
    let mut reply = [0u8; 16];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut reply))
        .await
        .unwrap_or_else(|_| panic!("no echo:\n{}\n{}", web.output(), emoji.output()))
        .unwrap();
    assert_eq!(&reply, b"hello over mtls\n");
    drop(conn);

    // The inbound proxy logged the verified client identity.
    let expected = format!("tls=true client_id={WEB}");
    let logged = |output: &str| {
        output
            .lines()
            .any(|line| line.contains("proxy=in") && line.contains(&expected))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logged(&emoji.output()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        logged(&emoji.output()),
        "no proxy=in line:\n{}",
        emoji.output()
    );
    assert!(
        web.output()
            .contains(&format!("Certified identity id={WEB}")),
        "{}",
        web.output()
    );

    // SIGTERM stops both cleanly.
    for process in [&mut emoji, &mut web] {
        process.terminate();
        let status = process.wait(Duration::from_secs(10));
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            process.name,
            process.output()
        );
    }

    let _ = stop.send(());
    ca.wait().await.unwrap();
}

/// `GET path` over HTTP/1.1: the status code and body, or `None` if nothing answered.
async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}

/// The bootstrap subcommands of `identity-ca`: a root, an issuer signed by it (keys 0600,
/// nothing overwritten without `--force`), cert-manager manifests; and one-line flag errors.
#[test]
fn identity_ca_bootstrap_subcommands() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::process::Command;

    let bin = example("identity-ca");
    let dir = scratch("bootstrap");
    let run = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };

    let out = run(&["root-ca", "--cert", "ca.crt", "--key", "ca.key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(dir.path().join("ca.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Refuses to overwrite without --force.
    let out = run(&["root-ca", "--cert", "ca.crt", "--key", "ca.key"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--force"), "{err}");

    let out = run(&[
        "issuer",
        "--ca-cert",
        "ca.crt",
        "--ca-key",
        "ca.key",
        "--duration",
        "48h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crt = std::fs::read_to_string(dir.path().join("issuer.crt")).unwrap();
    let key = std::fs::read_to_string(dir.path().join("issuer.key")).unwrap();
    let bundle =
        meshid::verify::TrustBundle::from_pem(&std::fs::read(dir.path().join("ca.crt")).unwrap())
            .unwrap();
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    let issuer = meshid::ca::IssuerCredentials::from_pem(&crt, &key, &bundle, now).unwrap();
    let lifetime = issuer.not_after() - issuer.not_before();
    assert!(lifetime >= time::Duration::hours(48), "{lifetime}");

    let out = run(&["cert-manager", "--namespace", "linkerd"]);
    assert!(out.status.success());
    let yaml = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "kind: Issuer",
        "kind: Certificate",
        "linkerd-identity-issuer",
        "linkerd-trust-anchor",
        "renewBefore: 25h0m0s",
        "isCA: true",
    ] {
        assert!(yaml.contains(needle), "{needle} missing from\n{yaml}");
    }

    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "identity-ca: unexpected argument '--bogus' found"
    );
}

/// `identity-ca` started with the arguments of Linkerd's chart (the `identity` command,
/// single-dash flags, `-enable-pprof`, `-kube-apiclient-qps`/`-burst`) becomes ready and stops
/// cleanly; TokenReview through a kubeconfig that cannot be read fails fast in one line.
#[tokio::test]
async fn identity_ca_takes_the_linkerd_charts_arguments() {
    let bin = example("identity-ca");
    let dir = scratch("chart-args");
    let dev_dir = dir.path().join("dev").display().to_string();
    let args = [
        "identity".to_owned(),
        "-log-level=info".to_owned(),
        "-log-format=plain".to_owned(),
        "-controller-namespace=linkerd".to_owned(),
        "-identity-trust-domain=cluster.local".to_owned(),
        "-identity-issuance-lifetime=24h0m0s".to_owned(),
        "-identity-clock-skew-allowance=20s".to_owned(),
        "-identity-scheme=linkerd.io/tls".to_owned(),
        "-enable-pprof=false".to_owned(),
        "-kube-apiclient-qps=100".to_owned(),
        "-kube-apiclient-burst=200".to_owned(),
        "--grpc-max-concurrent-streams=200".to_owned(),
        "--grpc-request-timeout=5s".to_owned(),
        "--admin-header-read-timeout=2s".to_owned(),
        "-addr=127.0.0.1:0".to_owned(),
        "-admin-addr=127.0.0.1:0".to_owned(),
        format!("-dev-dir={dev_dir}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ca = Process::spawn_args("identity-ca", &bin, &args, dir.path());
    let admin = ca
        .logged_addr(
            "identity service ready",
            "admin_addr",
            Duration::from_secs(60),
        )
        .await;
    ca.wait_ready(&admin, Duration::from_secs(20)).await;
    assert!(
        ca.output().contains("Issuer cert loaded"),
        "{}",
        ca.output()
    );
    // Logs to a pipe (as under `kubectl logs`) carry no terminal colour codes.
    assert!(!ca.output().contains('\x1b'), "{}", ca.output());
    ca.terminate();
    let status = ca.wait(Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", ca.output());

    // TokenReview through a kubeconfig that is not there: one line, non-zero.
    let dev = DevState::open(dir.path().join("dev")).unwrap();
    refused_for_a_missing_kubeconfig(
        &bin,
        dir.path(),
        &dev,
        &["--token-validation", "tokenreview"],
    );
}

/// Runs `identity-ca serve` on `dev`'s issuer and anchors with `args` and a kubeconfig that
/// does not exist, expecting it to be refused at start for that kubeconfig; returns the line.
fn refused_for_a_missing_kubeconfig(
    bin: &Path,
    dir: &Path,
    dev: &DevState,
    args: &[&str],
) -> String {
    let missing = dir.join("no-such-kubeconfig").display().to_string();
    let issuer = dev.issuer_folder().dir().display().to_string();
    let anchors = dev.trust_anchors().display().to_string();
    let mut all = vec!["serve", "--issuer", &issuer, "--trust-anchors", &anchors];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--kubeconfig", &missing]);
    let err = refused_at_start(bin, &all);
    assert!(
        err.starts_with(&format!(
            "identity-ca: cannot read the kubeconfig {missing}: "
        )),
        "{err}"
    );
    err
}

/// Runs `identity-ca` with `args` on ephemeral ports, expecting it to fail at start with
/// exit code 1 and one line on stderr (nothing logged before); returns that line.
fn refused_at_start(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .args(["--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// Numeric flags out of range stop `identity-ca` before it does anything, with one line
/// naming the flag and the range (a `--kube-apiclient-qps` of 1e-30 used to panic on the
/// first rate-limited TokenReview).
#[test]
fn identity_ca_refuses_numbers_out_of_range_in_one_line() {
    let bin = example("identity-ca");
    let dir = scratch("numbers");
    let dev_dir = dir.path().join("dev");
    for (flag, value, reason) in [
        (
            "--kube-apiclient-qps",
            "1e-30",
            "must be between 0.01 and 1000000",
        ),
        (
            "--kube-apiclient-qps",
            "NaN",
            "must be between 0.01 and 1000000",
        ),
        (
            "--kube-apiclient-burst",
            "0",
            "must be between 1 and 1000000",
        ),
        ("--worker-threads", "0", "must be between 1 and 1024"),
        (
            "--grpc-max-concurrent-streams",
            "100000",
            "must be between 1 and 10000",
        ),
        (
            "--grpc-max-message-size",
            "1024",
            "must be between 16384 and 16777216",
        ),
        (
            "--grpc-request-timeout",
            "0s",
            "must be between 100ms and 5m0s",
        ),
        (
            "--grpc-request-timeout",
            "ten",
            "invalid duration 'ten': expected a number",
        ),
        ("--grpc-max-in-flight", "0", "must be between 1 and 1000000"),
        (
            "--grpc-keepalive-interval",
            "3h",
            "must be between 100ms and 2h0m0s",
        ),
        (
            "--grpc-keepalive-timeout",
            "0s",
            "must be between 100ms and 10m0s",
        ),
        (
            "--admin-header-read-timeout",
            "30s",
            "must be between 100ms and 10s",
        ),
        (
            "--admin-max-connections",
            "0",
            "must be between 1 and 100000",
        ),
    ] {
        let out = Command::new(&bin)
            .args(["--dev-dir", &dev_dir.display().to_string(), flag, value])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        let name = flag
            .trim_start_matches("--")
            .replace('-', "_")
            .to_uppercase();
        assert_eq!(
            err.trim_end(),
            format!("identity-ca: invalid value '{value}' for '{flag} <{name}>': {reason}"),
        );
    }
    assert!(
        !dev_dir.exists(),
        "state written before the flags were checked"
    );
}

/// `identity-ca --kube-events` reaches the API server as TokenReview does; a kubeconfig that
/// cannot be read stops it at start, in one line, before the issuer is loaded, even when
/// tokens are validated offline.
#[test]
fn identity_ca_kube_events_with_a_missing_kubeconfig_fail_in_one_line() {
    let bin = example("identity-ca");
    let dir = scratch("kube-events");
    let dev = DevState::prepare(dir.path().join("dev"), OffsetDateTime::now_utc()).unwrap();
    let jwks = format!("jwks:{}", dev.jwks().display());
    let err = refused_for_a_missing_kubeconfig(
        &bin,
        dir.path(),
        &dev,
        &["--token-validation", &jwks, "--kube-events"],
    );
    assert!(!err.contains("Issuer cert loaded"), "{err}");
}

/// `identity-ca serve` started with `args` on ephemeral ports, and its gRPC address once it
/// says it is ready.
async fn identity_ca_ready(bin: &Path, name: &str, args: &[&str], dir: &Path) -> (Process, String) {
    let mut all = vec![
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let mut ca = Process::spawn_args(name, bin, &all, dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        ca.assert_running();
        let output = ca.output();
        let ready = output
            .lines()
            .find(|line| line.contains("identity service ready"))
            .and_then(|line| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix("grpc_addr="))
            });
        if let Some(grpc) = ready {
            return (ca, grpc.to_owned());
        }
        assert!(Instant::now() < deadline, "{name} not ready:\n{output}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Certifies emojivoto/web at `grpc` with `token`; the error's text if refused.
async fn certify_web(grpc: &str, token: &str, anchors: &Path) -> Result<(), String> {
    use meshid::client::{Client, ClientConfig, TokenSource};
    use meshid::grpc::{GrpcCertifier, Timeouts};
    use meshid::policy::SystemClock;
    let bundle = meshid::verify::TrustBundle::from_pem(&std::fs::read(anchors).unwrap()).unwrap();
    let certifier =
        GrpcCertifier::connect_plaintext(&format!("http://{grpc}"), Timeouts::default())
            .await
            .unwrap();
    let token = TokenSource::Fixed(zeroize::Zeroizing::new(token.as_bytes().to_vec()));
    let mut client = Client::new(
        ClientConfig::new(WEB, token, bundle),
        certifier,
        SystemClock,
    )
    .unwrap();
    client
        .certify_once()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `--token-issuer` (repeatable) sets the accepted issuers of `jwks:` validation, and the
/// refusal of another names it; `--token-review-audience-fallback` is warned about at start.
/// (Two worker threads: waiting for a process blocks one, and the other closes the test's
/// gRPC connections, which the stopping service waits for.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_ca_token_flags() {
    let bin = example("identity-ca");
    let dir = scratch("token-flags");
    let now = OffsetDateTime::now_utc();
    let dev = DevState::prepare(dir.path().join("dev"), now).unwrap();
    let issuer = dev.issuer_folder().dir().display().to_string();
    let anchors = dev.trust_anchors().display().to_string();
    let jwks = format!("jwks:{}", dev.jwks().display());
    let served = ["--issuer", &issuer, "--trust-anchors", &anchors];
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let token = dev
        .token(&sa, DEFAULT_AUDIENCE, Duration::from_secs(3600), now)
        .unwrap();
    let eks = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE";

    let mut args = served.to_vec();
    args.extend_from_slice(&["--token-validation", &jwks, "--token-issuer", eks]);
    let (mut ca, grpc) = identity_ca_ready(&bin, "identity-ca-eks", &args, dir.path()).await;
    let refused = certify_web(&grpc, &token, &dev.trust_anchors())
        .await
        .unwrap_err();
    assert!(
        refused.contains(&format!(
            "token issuer \"{DEV_TOKEN_ISSUER}\" is not accepted (accepted: [\"{eks}\"])"
        )) && refused.contains("--token-issuer"),
        "{refused}"
    );
    ca.terminate();
    assert!(
        ca.wait(Duration::from_secs(10)).success(),
        "{}",
        ca.output()
    );

    args.extend_from_slice(&["--token-issuer", DEV_TOKEN_ISSUER]);
    let (mut ca, grpc) = identity_ca_ready(&bin, "identity-ca-both", &args, dir.path()).await;
    certify_web(&grpc, &token, &dev.trust_anchors())
        .await
        .unwrap();
    ca.terminate();
    assert!(
        ca.wait(Duration::from_secs(10)).success(),
        "{}",
        ca.output()
    );

    // TokenReview with the audience fallback: warned about (the client is built, nothing is
    // asked of the API server yet).
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "current-context: c\n\
             contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n\
             clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:6443', \
             certificate-authority: '{anchors}'}}}}]\n\
             users: [{{name: u, user: {{token: identity-token}}}}]\n"
        ),
    )
    .unwrap();
    let kubeconfig = kubeconfig.display().to_string();
    let mut args = served.to_vec();
    args.extend_from_slice(&[
        "--token-validation",
        "tokenreview",
        "--kubeconfig",
        &kubeconfig,
    ]);
    let (mut ca, _) = identity_ca_ready(&bin, "identity-ca-strict", &args, dir.path()).await;
    assert!(
        !ca.output()
            .contains("--token-review-audience-fallback is on"),
        "{}",
        ca.output()
    );
    ca.terminate();
    assert!(
        ca.wait(Duration::from_secs(10)).success(),
        "{}",
        ca.output()
    );
    args.push("--token-review-audience-fallback");
    let (mut ca, _) = identity_ca_ready(&bin, "identity-ca-fallback", &args, dir.path()).await;
    assert!(
        ca.output().contains(
            "--token-review-audience-fallback is on: a TokenReview refused for its audience"
        ),
        "{}",
        ca.output()
    );
    ca.terminate();
    assert!(
        ca.wait(Duration::from_secs(10)).success(),
        "{}",
        ca.output()
    );
}

/// `identity-ca manifests` prints YAML that reads back into the typed objects `Manifests`
/// builds for the same options; bad options are refused in one line.
#[test]
fn identity_ca_prints_the_manifests() {
    use meshid::server::manifests::{ManifestOptions, Manifests};
    use std::process::Command;

    let bin = example("identity-ca");
    let run = |args: &[&str]| {
        Command::new(&bin)
            .arg("manifests")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--namespace",
        "mesh",
        "--replicas",
        "2",
        "--image",
        "registry.example/identity-ca:v1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = Manifests::from_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let mut options = ManifestOptions::default();
    options.namespace = "mesh".parse().unwrap();
    options.replicas = 2;
    options.image = "registry.example/identity-ca:v1".parse().unwrap();
    assert_eq!(read, Manifests::build(&options).unwrap());

    for (args, expected) in [
        (
            &["--replicas", "0"][..],
            "identity-ca: invalid manifest option replicas: 0 is not between 1 and 100",
        ),
        (
            &["--image", "Bad Image"][..],
            "identity-ca: invalid value 'Bad Image' for '--image <IMAGE>': invalid image 'Bad Image'",
        ),
        (
            &["--namespace", "Bad_NS"][..],
            "identity-ca: invalid value 'Bad_NS' for '--namespace <NAMESPACE>': ",
        ),
    ] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(expected), "{args:?}: {err}");
    }
}

/// Replicas are interchangeable: three `identity-ca` processes serve one issuer folder, 1,000
/// clients (each its own key and CSR) certify through a certifier balancing over all three,
/// and mid-run one replica is SIGKILLed and another stopped and started again on its address.
/// Every client is certified, every chain verifies, and the serials are unique across the
/// replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_interchangeable_through_a_kill_and_a_restart() {
    use meshid::client::{Client, ClientConfig, TokenSource};
    use meshid::grpc::{Endpoints, GrpcCertifier, Timeouts};
    use meshid::policy::SystemClock;
    use meshid::verify::{TrustBundle, Usage, VerifyOptions};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const CLIENTS: usize = 1_000;
    const CERTIFIERS: usize = 50;
    let bin = example("identity-ca");
    let dir = scratch("replicas");
    let now = OffsetDateTime::now_utc();
    let dev = DevState::prepare(dir.path().join("dev"), now).unwrap();
    let issuer = dev.issuer_folder().dir().display().to_string();
    let anchors = dev.trust_anchors().display().to_string();
    let jwks = format!("jwks:{}", dev.jwks().display());
    let args = |addr: &str| {
        vec![
            "serve".to_owned(),
            "--addr".to_owned(),
            addr.to_owned(),
            "--admin-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--issuer".to_owned(),
            issuer.clone(),
            "--trust-anchors".to_owned(),
            anchors.clone(),
            "--token-validation".to_owned(),
            jwks.clone(),
            "--token-issuer".to_owned(),
            DEV_TOKEN_ISSUER.to_owned(),
        ]
    };
    async fn ready(bin: &Path, name: &str, args: &[String], dir: &Path) -> (Process, String) {
        let mut process = Process::spawn_args(
            name,
            bin,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            dir,
        );
        let grpc = process
            .logged_addr(
                "identity service ready",
                "grpc_addr",
                Duration::from_secs(30),
            )
            .await;
        (process, grpc)
    }
    let mut replicas = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..3 {
        let (process, grpc) = ready(
            &bin,
            &format!("replica-{i}"),
            &args("127.0.0.1:0"),
            dir.path(),
        )
        .await;
        addrs.push(grpc.parse::<SocketAddr>().unwrap());
        replicas.push(Some(process));
    }

    let bundle = TrustBundle::from_pem(&std::fs::read(dev.trust_anchors()).unwrap()).unwrap();
    let timeouts = Timeouts::new(Duration::from_secs(3), Duration::from_secs(10));
    let mut certifiers = Vec::new();
    for _ in 0..CERTIFIERS {
        certifiers.push(
            GrpcCertifier::connect_endpoints(Endpoints::List(addrs.clone()), None, timeouts)
                .await
                .unwrap(),
        );
    }
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    // The last quarter starts once replica 1 is back, so it serves some of them.
    let (restarted_tx, restarted_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CLIENTS {
        let token = dev
            .token(&sa, DEFAULT_AUDIENCE, Duration::from_secs(3600), now)
            .unwrap();
        let certifier = certifiers[i % CERTIFIERS].clone();
        let (bundle, done, permits) = (bundle.clone(), Arc::clone(&done), Arc::clone(&permits));
        let mut restarted = restarted_rx.clone();
        tasks.spawn(async move {
            if i >= CLIENTS * 3 / 4 {
                let _ = restarted.wait_for(|r| *r).await;
            }
            let _permit = permits.acquire_owned().await.unwrap();
            let token = TokenSource::Fixed(zeroize::Zeroizing::new(token.into_bytes()));
            let mut client = Client::new(
                ClientConfig::new(WEB, token, bundle),
                certifier,
                SystemClock,
            )
            .unwrap();
            let certified = client
                .certify_once()
                .await
                .map_err(|e| format!("client {i}: {e}"));
            done.fetch_add(1, Ordering::SeqCst);
            certified?;
            Ok::<_, String>(client.credentials().snapshot().unwrap().chain().to_vec())
        });
    }

    // Mid-run: replica 0 is killed; later replica 1 stops and starts again on its address.
    let wait_for = |n: usize| {
        let done = Arc::clone(&done);
        async move {
            while done.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(CLIENTS / 4).await;
    let mut killed = replicas[0].take().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    wait_for(CLIENTS / 2).await;
    let mut stopped = replicas[1].take().unwrap();
    stopped.terminate();
    assert!(stopped.wait(Duration::from_secs(30)).success());
    let (mut restarted, _) = ready(
        &bin,
        "replica-1-again",
        &args(&addrs[1].to_string()),
        dir.path(),
    )
    .await;
    let restarted_admin = restarted
        .logged_addr(
            "identity service ready",
            "admin_addr",
            Duration::from_secs(5),
        )
        .await;
    replicas[1] = Some(restarted);
    // Calls that met replica 1 while it was down ejected it from every balancer for
    // EJECT_AFTER_FAILURE; the last quarter starts once that has passed, however fast or slow
    // the machine got the first three quarters done.
    tokio::time::sleep(meshid::grpc::EJECT_AFTER_FAILURE + Duration::from_secs(1)).await;
    restarted_tx.send_replace(true);

    let mut serials = std::collections::HashSet::new();
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(chain) => {
                let verified = meshid::verify::verify_identity(
                    &bundle,
                    &chain[0],
                    &chain[1..],
                    OffsetDateTime::now_utc(),
                    Usage::Either,
                    WEB,
                    &VerifyOptions::default(),
                );
                assert!(verified.is_ok(), "{verified:?}");
                let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
                assert!(
                    serials.insert(leaf.raw_serial().to_vec()),
                    "a serial issued twice"
                );
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} clients not certified: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(serials.len(), CLIENTS);
    // The restarted replica took its share.
    let (_, metrics) = http_get(&restarted_admin, "/metrics").await.unwrap();
    let served: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("identity_certify_requests_total{code=\"OK\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        served > 0,
        "the restarted replica served nothing:\n{metrics}"
    );
    for process in replicas.iter_mut().flatten() {
        process.assert_running();
    }
}

/// The storm benchmark, small: both validation modes over both transports, every proxy
/// certified, the offline runs without a single TokenReview, and the report's lines there.
#[test]
fn storm_certifies_every_proxy_in_both_modes() {
    let dir = scratch("storm");
    let mut storm = Process::spawn(
        "storm",
        &example("storm"),
        &[
            ("--proxies", "300"),
            ("--qps", "2000"),
            ("--burst", "100"),
            ("--start-window-ms", "300"),
            ("--give-up-after-secs", "120"),
        ],
        dir.path(),
    );
    let status = storm.wait(Duration::from_secs(600));
    let output = storm.output();
    assert!(status.success(), "{status}:\n{output}");
    let runs: Vec<&str> = output.split("== storm: ").skip(1).collect();
    assert_eq!(runs.len(), 4, "{output}");
    for run in &runs {
        assert!(run.contains("failures 0;"), "{run}");
        assert!(run.contains("peak-to-mean"), "{run}");
    }
    for offline in runs.iter().filter(|r| r.contains("offline (oidc)")) {
        assert!(offline.contains("TokenReviews 0\n"), "{offline}");
    }
    for review in runs.iter().filter(|r| r.contains("TokenReview (QPS")) {
        // One review per proxy: distinct tokens, nothing cached.
        assert!(review.contains("TokenReviews 300\n"), "{review}");
    }
    assert_eq!(output.matches("storm speed-up over").count(), 2, "{output}");
}
