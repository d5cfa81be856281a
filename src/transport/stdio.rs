//! MCP over stdin/stdout: newline-delimited JSON-RPC; logs go to stderr only.

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::tools::{HostTools, ToolsState};

/// Serve until the client closes stdin.
pub async fn serve(state: Arc<ToolsState>) -> anyhow::Result<()> {
    let service = HostTools::new(state)
        .serve(rmcp::transport::io::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}
