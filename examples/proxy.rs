//! `proxy`: a meshid sidecar.
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
//! cargo run --example proxy -- --trust-anchors .meshid-dev/trust-anchors.pem \
//!     --namespace emojivoto --service-account emoji --token-file emoji.token \
//!     --inbound 127.0.0.1:4143 --app 127.0.0.1:7000
//! ```
//!
//! The command line lives in `meshid::proxy::cli` (feature `cli`; installed as `meshid-proxy`
//! with `cargo install --path crates/proxy --features cli`).

fn main() -> std::process::ExitCode {
    meshid::proxy::cli::main(std::env::args_os())
}
