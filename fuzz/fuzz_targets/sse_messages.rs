//! libFuzzer entry for [`hostmcp_fuzz::sse_messages`]; the body is there, shared with the replay.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostmcp_fuzz::sse_messages::run(data));
