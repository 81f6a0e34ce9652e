//! Fuzzes kubeconfig files: parsing, and what a returned configuration may show.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshid::fuzzing::kubeconfig(data));
