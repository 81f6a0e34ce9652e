//! The identity service under load, as a process of its own: started, found ready, measured
//! from `/proc`, and stopped.

use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::Error;

/// The log line `identity-ca` writes once it listens, with its addresses.
const READY_LINE: &str = "identity service ready";

/// A running `identity-ca`, killed when dropped. It listens on ports it chose (port 0) and
/// said in its log, so no port is picked here and released for it to bind.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    output: Arc<Mutex<String>>,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `bin` with `args` (which should include `--addr 127.0.0.1:0` and
    /// `--admin-addr 127.0.0.1:0`, and a log level of at least `info`) and waits until it has
    /// logged that it is ready, within `timeout`.
    pub fn spawn(bin: &Path, args: &[String], timeout: Duration) -> Result<Self, Error> {
        if !bin.exists() {
            return Err(Error::Server {
                reason: format!(
                    "{} not found: build it first (`cargo build --release --examples`)",
                    bin.display()
                ),
            });
        }
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Server {
                reason: format!("cannot start {}: {e}", bin.display()),
            })?;
        let output = Arc::new(Mutex::new(String::new()));
        if let Some(stdout) = child.stdout.take() {
            collect(stdout, Arc::clone(&output));
        }
        if let Some(stderr) = child.stderr.take() {
            collect(stderr, Arc::clone(&output));
        }
        let deadline = Instant::now() + timeout;
        let (grpc_addr, admin_addr) = loop {
            let text = output
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(line) = text.lines().find(|l| l.contains(READY_LINE)) {
                break (field(line, "grpc_addr")?, field(line, "admin_addr")?);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::Server {
                    reason: format!("identity-ca exited before it was ready ({status}):\n{text}"),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(Error::Server {
                    reason: format!("identity-ca was not ready within {timeout:?}:\n{text}"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Self {
            child,
            output,
            grpc_addr,
            admin_addr,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it serves gRPC `Certify`.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Where it serves `/ready` and `/metrics`.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// What it has written so far (standard output and error, interleaved by line).
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Its CPU time (user + system) so far.
    pub fn cpu(&self) -> Result<Duration, Error> {
        cpu_time(self.pid())
    }

    /// Its memory: resident now and at its peak (`VmRSS`, `VmHWM`), in MiB.
    pub fn memory_mib(&self) -> Result<(f64, f64), Error> {
        memory_mib(self.pid())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends what `reader` produces to `into`, line by line, on a thread of its own.
fn collect(reader: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            let mut text = into.lock().unwrap_or_else(PoisonError::into_inner);
            text.push_str(&line);
            text.push('\n');
        }
    });
}

/// The address in `key=ADDR` on a log line.
fn field(line: &str, key: &str) -> Result<SocketAddr, Error> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&prefix))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .ok_or_else(|| Error::Server {
            reason: format!("the ready line has no {key}=ADDRESS: {line}"),
        })
}

/// The `identity-ca` next to the running executable (`target/<profile>/examples/`).
pub fn sibling_binary(name: &str) -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Server {
        reason: format!("cannot find this executable's path: {e}"),
    })?;
    let dir = exe.parent().ok_or_else(|| Error::Server {
        reason: "this executable has no folder".to_owned(),
    })?;
    Ok(dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// CPU time (user + system) of a process, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Result<Duration, Error> {
    let path = format!("/proc/{pid}/stat");
    let stat = read(&path)?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Field 3 (state) is fields[0]: utime (14) and stime (15) are fields[11] and fields[12].
    let ticks = |i: usize| -> Result<u64, Error> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| Error::Proc {
                path: path.clone(),
                reason: format!("no field {}", i + 3),
            })
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks()))
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB, from `/proc/<pid>/status`.
pub fn memory_mib(pid: u32) -> Result<(f64, f64), Error> {
    let path = format!("/proc/{pid}/status");
    let status = read(&path)?;
    let kib = |name: &str| -> Result<f64, Error> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .ok_or_else(|| Error::Proc {
                path: path.clone(),
                reason: format!("no {name}"),
            })
    };
    Ok((kib("VmRSS:")? / 1024.0, kib("VmHWM:")? / 1024.0))
}

fn read(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Proc {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's value, if that fails).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}
