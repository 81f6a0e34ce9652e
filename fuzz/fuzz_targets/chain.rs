//! Fuzzes certificate chains (anchor, leaf, intermediates), through mesh-profile verification.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshid_fuzzing::chain(data));
