//! Host readers: structured facts about this Linux host read from kernel and system
//! interfaces. One file per subject; no MCP types here: the tools in `crate::tools` shape
//! these values for a model.

pub mod logs;
pub mod systemd;
