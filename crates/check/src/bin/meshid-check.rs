//! `meshid-check`: Linkerd-style identity checks. See `meshid_check::cli`.

fn main() -> std::process::ExitCode {
    meshid_check::cli::main(std::env::args_os())
}
