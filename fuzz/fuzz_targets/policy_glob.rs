//! libFuzzer entry for [`hostmcp_fuzz::policy_glob`]; the body is there, shared with the replay.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostmcp_fuzz::policy_glob::run(data));
