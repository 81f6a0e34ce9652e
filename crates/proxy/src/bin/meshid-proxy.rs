//! `meshid-proxy`: a meshid sidecar. See `meshid_proxy::cli` (feature `cli`).

fn main() -> std::process::ExitCode {
    meshid_proxy::cli::main(std::env::args_os())
}
