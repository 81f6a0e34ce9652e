//! `check`: the identity checks of `linkerd check --proxy`, stricter and scriptable. The command
//! line lives in `meshid::check::cli` (installed as `meshid-check` with
//! `cargo install --path crates/check`).
//!
//! ```text
//! cargo run --example check -- --trust-anchors ca-bundle.crt --issuer ./issuer
//! ```

fn main() -> std::process::ExitCode {
    meshid::check::cli::main(std::env::args_os())
}
