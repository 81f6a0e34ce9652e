//! Fuzzes DER certificate signing requests, through the CA's parser and issuance policy.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshid_fuzzing::csr(data));
