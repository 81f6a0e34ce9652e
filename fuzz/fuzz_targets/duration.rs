//! Fuzzes Go durations, through parsing and the format/parse round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshid_fuzzing::duration(data));
