//! `identity-ca`: the meshid identity service. See `meshid_server::cli::identity_ca`.

fn main() -> std::process::ExitCode {
    meshid_server::cli::identity_ca::main(std::env::args())
}
