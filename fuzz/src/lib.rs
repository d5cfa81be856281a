//! The bodies of hostmcp's fuzz targets: one module per parser hostmcp owns, each with a
//! `run(data)` that feeds the bytes to the real library code and asserts what must hold
//! for every input (beyond "does not panic"). The libFuzzer binaries in `fuzz_targets/`
//! and the corpus replay ([`replay`], run by `cargo test`) call the same functions, so
//! the targets cannot rot without the replay failing.

pub mod audit_verify;
pub mod config_file;
pub mod policy_decide;
pub mod policy_glob;
pub mod sse_messages;

#[cfg(test)]
mod replay;
