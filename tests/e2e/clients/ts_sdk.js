// A TypeScript SDK client (1.x's @modelcontextprotocol/sdk or 2.x's @modelcontextprotocol/client,
// from the node_modules directory given) that lists the tools and calls each tool of a plan over
// Streamable HTTP, then closes its session, as an application using the SDK's defaults would.
//
//   node ts_sdk.js NODE_MODULES PLAN.json
//
// PLAN is {"url", "token", "calls": [{"name", "arguments"}], "out"}; the answer
// ({"tools": [...], "results": [{"name", "is_error", "text"}]}) is written to "out", so the
// process's stdout and stderr carry only what the SDK printed (ajv's `unknown format` warnings,
// for one).
const fs = require("fs");
const [modules, planPath] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planPath, "utf8"));
const v1 = fs.existsSync(modules + "/@modelcontextprotocol/sdk/package.json");
const { Client } = v1
  ? require(modules + "/@modelcontextprotocol/sdk/dist/cjs/client/index.js")
  : require(modules + "/@modelcontextprotocol/client");
const { StreamableHTTPClientTransport } = v1
  ? require(modules + "/@modelcontextprotocol/sdk/dist/cjs/client/streamableHttp.js")
  : require(modules + "/@modelcontextprotocol/client");

const textOf = (result) => (result.content || []).map((block) => block.text || "").join("");

(async () => {
  const transport = new StreamableHTTPClientTransport(new URL(plan.url), {
    requestInit: { headers: { Authorization: "Bearer " + plan.token } },
  });
  const client = new Client({ name: "hostmcp-every-client", version: "1.0.0" });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((tool) => tool.name);
  const results = [];
  for (const call of plan.calls) {
    const result = await client.callTool({ name: call.name, arguments: call.arguments });
    results.push({ name: call.name, is_error: result.isError === true, text: textOf(result) });
  }
  await transport.terminateSession();
  await client.close();
  fs.writeFileSync(plan.out, JSON.stringify({ tools, results }));
})().catch((e) => {
  console.error("FAILED", e);
  process.exit(1);
});
