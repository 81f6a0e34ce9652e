//! Fuzzes kubeconfig files: kube's parser, then meshid's checks of a context.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshid_fuzzing::kubeconfig(data));
