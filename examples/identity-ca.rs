//! `identity-ca`: the meshid identity service (Linkerd's `identity` controller, and better).
//!
//! With no arguments it runs in development mode: a state folder `./.meshid-dev/` (trust
//! anchor, issuer, token-signing key, JWKS) is created or reused, gRPC `Certify` listens on
//! 127.0.0.1:8080 and admin HTTP on 127.0.0.1:9990. The command line lives in
//! `meshid::server::cli::identity_ca` (installed as a binary with
//! `cargo install --path crates/server`); `identity-ca --help` lists everything.

fn main() -> std::process::ExitCode {
    meshid::server::cli::identity_ca::main(std::env::args())
}
