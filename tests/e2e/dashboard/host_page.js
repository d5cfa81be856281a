// The host page of tests/e2e/test_dashboard.py, bundled for the browser by drive.mjs (esbuild).
// It is a minimal MCP Apps host built from the official pieces: the TypeScript SDK client
// connects to hostmcp (through drive.mjs's same-origin /mcp proxy, which adds the token, so
// no credential is in the page), reads the ui:// resource that host_info links to, and
// ext-apps' AppBridge runs the view in a sandbox proxy on another origin (sandbox.html),
// forwarding the view's tools/call to hostmcp. What it saw goes on window.__host.
import {
  AppBridge,
  PostMessageTransport,
  RESOURCE_MIME_TYPE,
  getToolUiResourceUri,
} from "@modelcontextprotocol/ext-apps/app-bridge";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const EXTENSION_ID = "io.modelcontextprotocol/ui";
const state = (window.__host = { phase: "starting", appToolCalls: [] });

async function main() {
  const params = new URLSearchParams(location.search);
  const client = new Client(
    { name: "hostmcp-e2e-apps-host", version: "1.0.0" },
    { capabilities: { extensions: { [EXTENSION_ID]: { mimeTypes: [RESOURCE_MIME_TYPE] } } } },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.origin)));
  state.serverExtension = client.getServerCapabilities()?.extensions?.[EXTENSION_ID] ?? null;

  const { tools } = await client.listTools();
  const tool = tools.find((t) => t.name === "host_info");
  state.toolMeta = tool?._meta ?? null;
  state.processListMeta = tools.find((t) => t.name === "process_list")?._meta ?? null;
  const uri = getToolUiResourceUri(tool);
  state.uri = uri;
  if (!uri) throw new Error("host_info names no ui:// resource");

  const listed = (await client.listResources()).resources.find((r) => r.uri === uri);
  state.listed = listed ?? null;
  const read = await client.readResource({ uri });
  const content = read.contents[0];
  if (content.mimeType !== RESOURCE_MIME_TYPE) throw new Error(`MIME type ${content.mimeType}`);
  const html = "blob" in content ? atob(content.blob) : content.text;
  const csp = content._meta?.ui?.csp;
  state.csp = csp ?? null;

  // The sandbox proxy: another origin (localhost vs 127.0.0.1), its CSP header built from
  // the resource's _meta.ui.csp by drive.mjs.
  const iframe = document.createElement("iframe");
  iframe.id = "sandbox";
  iframe.setAttribute("sandbox", "allow-scripts allow-same-origin");
  iframe.style.cssText = "width:900px;height:700px;border:1px solid #ccc";
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
  state.phase = "sandbox-ready";

  const capabilities = client.getServerCapabilities();
  const bridge = new AppBridge(
    client,
    { name: "hostmcp-e2e-apps-host", version: "1.0.0" },
    { serverTools: capabilities?.tools, serverResources: capabilities?.resources, logging: {} },
    { hostContext: { theme: "light", displayMode: "inline", platform: "web" } },
  );
  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  bridge.onsizechange = ({ height }) => {
    if (height) iframe.style.height = `${Math.min(height + 2, 2000)}px`;
  };
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  await bridge.sendSandboxResourceReady({ html, csp });
  await initialized;
  state.phase = "initialized";
  state.appVersion = bridge.getAppVersion?.() ?? null;

  // What a chat host does when the model calls the tool: the arguments, then the result.
  await bridge.sendToolInput({ arguments: {} });
  const result = await client.callTool({ name: "host_info", arguments: {} });
  await bridge.sendToolResult(result);
  state.phase = "running";
}

main().catch((error) => {
  state.phase = "failed";
  state.error = String(error?.stack ?? error);
});
