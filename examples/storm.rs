//! `storm`: a pod-start storm against `identity-ca` (built next to it), TokenReview against
//! offline token validation, over h2c and TLS. See `meshid_loadgen::storm` and BENCHMARKS.md.
//!
//! ```text
//! cargo build --release --examples && target/release/examples/storm
//! ```

fn main() -> std::process::ExitCode {
    meshid_loadgen::storm::main(std::env::args_os())
}
