//! The messages, server and client generated from the SPIFFE project's `workload.proto`
//! (vendored in `proto/`, see `proto/PROVENANCE.md`). The proto declares no package, so the
//! service is `/SpiffeWorkloadAPI/<method>`, as every Workload API client calls it.
#![allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    clippy::pedantic,
    elided_lifetimes_in_paths
)]

tonic::include_proto!("_");
