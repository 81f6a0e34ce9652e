//! Generates the Workload API's messages, server and client from the vendored
//! `proto/workload.proto` with a pure-Rust protobuf compiler (protox): no `protoc` is needed,
//! and no field number is written by hand.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/workload.proto");
    let descriptors = protox::compile(["workload.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
