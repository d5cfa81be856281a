// The host page of tests/e2e/test_approval_app.py, bundled for the browser by drive.mjs
// (esbuild): a minimal MCP Apps host from the official pieces, like the dashboard test's. The
// TypeScript SDK client connects to hostmcp (through drive.mjs's same-origin /mcp proxy, which
// adds the token) declaring the MCP Apps extension, reads the ui:// view run_command links to,
// runs it in ext-apps' AppBridge behind the sandbox proxy (../dashboard/sandbox.html, another
// origin), then does what a chat host does when the model calls run_command (or the tool in
// ?tool=, with the arguments in ?args=, JSON): the tool in the host context, the arguments to
// the view, the call, and its result to the view when it ends. The view's own tools/call
// (approval_pending, approval_decide) go through the bridge to hostmcp. What it saw goes on
// window.__host.
import {
  AppBridge,
  PostMessageTransport,
  RESOURCE_MIME_TYPE,
  getToolUiResourceUri,
} from "@modelcontextprotocol/ext-apps/app-bridge";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const EXTENSION_ID = "io.modelcontextprotocol/ui";
const state = (window.__host = { phase: "starting" });

async function main() {
  const params = new URLSearchParams(location.search);
  const client = new Client(
    { name: "hostmcp-e2e-apps-host", version: "1.0.0" },
    { capabilities: { extensions: { [EXTENSION_ID]: { mimeTypes: [RESOURCE_MIME_TYPE] } } } },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.origin)));

  const toolName = params.get("tool") || "run_command";
  const { tools } = await client.listTools();
  const tool = tools.find((t) => t.name === toolName);
  if (!tool) throw new Error(`no tool ${toolName}`);
  const uri = getToolUiResourceUri(tool);
  state.uri = uri;
  if (!uri) throw new Error(`${toolName} names no ui:// resource`);
  // What a host offers its model: no app-only tool.
  state.modelTools = tools
    .filter((t) => !(t._meta?.ui?.visibility && !t._meta.ui.visibility.includes("model")))
    .map((t) => t.name);

  const read = await client.readResource({ uri });
  const content = read.contents[0];
  if (content.mimeType !== RESOURCE_MIME_TYPE) throw new Error(`MIME type ${content.mimeType}`);
  const html = "blob" in content ? atob(content.blob) : content.text;
  const csp = content._meta?.ui?.csp;

  const iframe = document.createElement("iframe");
  iframe.id = "sandbox";
  iframe.setAttribute("sandbox", "allow-scripts allow-same-origin");
  iframe.style.cssText = "width:700px;height:600px;border:1px solid #ccc";
  const sandboxUrl = new URL(params.get("sandbox"));
  sandboxUrl.searchParams.set("csp", JSON.stringify(csp ?? {}));
  const proxyReady = new Promise((resolve) => {
    window.addEventListener("message", function listener(event) {
      if (event.source === iframe.contentWindow
          && event.data?.method === "ui/notifications/sandbox-proxy-ready") {
        window.removeEventListener("message", listener);
        resolve();
      }
    });
  });
  iframe.src = sandboxUrl.href;
  document.body.appendChild(iframe);
  await proxyReady;

  const capabilities = client.getServerCapabilities();
  const bridge = new AppBridge(
    client,
    { name: "hostmcp-e2e-apps-host", version: "1.0.0" },
    { serverTools: capabilities?.tools, serverResources: capabilities?.resources, logging: {} },
    { hostContext: { theme: "light", displayMode: "inline", platform: "web", toolInfo: { tool } } },
  );
  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  await bridge.sendSandboxResourceReady({ html, csp });
  await initialized;
  state.phase = "initialized";

  // The model's call of the tool: it waits for approval while the view is shown.
  const args = params.get("args") ? JSON.parse(params.get("args")) : { argv: ["touch", params.get("marker")] };
  await bridge.sendToolInput({ arguments: args });
  state.phase = "waiting";
  const result = await client.callTool({ name: toolName, arguments: args }, { timeout: 120000 });
  state.result = {
    isError: Boolean(result.isError),
    text: (result.content || []).map((b) => b.text || "").join(""),
    structuredContent: result.structuredContent ?? null,
  };
  await bridge.sendToolResult(result);
  state.phase = "done";
}

main().catch((error) => {
  state.phase = "failed";
  state.error = String(error?.stack ?? error);
});
