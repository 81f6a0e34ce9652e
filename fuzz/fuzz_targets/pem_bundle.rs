//! Fuzzes PEM trust bundles, through parsing and the `to_pem` round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshid_fuzzing::pem_bundle(data));
