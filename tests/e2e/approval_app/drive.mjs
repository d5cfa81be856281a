// Drives hostmcp's MCP Apps confirmation view in a real browser for tests/e2e/test_approval_app.py.
//
//   HOSTMCP_MCP_URL=http://127.0.0.1:PORT/mcp HOSTMCP_TOKEN=... HOSTMCP_DECISION=approve|deny \
//   HOSTMCP_MARKER=/tmp/x HOSTMCP_BROWSER_NODE_MODULES=.test-deps/browser/node_modules node drive.mjs
//
// Optional: HOSTMCP_TOOL (default run_command) and HOSTMCP_ARGS (its arguments as JSON; default
// {"argv": ["touch", HOSTMCP_MARKER]}) for the host's call; HOSTMCP_OTHER=<token name> with
// HOSTMCP_OTHER_DECISION=approve|deny: first wait for that other token's request in the view (an
// approver's view lists it), decide it and wait for its outcome, then decide the view's own
// (HOSTMCP_DECISION=none: the host's own call waits for nobody, as an admin's).
//
// Serves, on loopback only, the host page (host_page.js bundled with esbuild) on 127.0.0.1 and
// the dashboard test's sandbox proxy (../dashboard/sandbox.html) on "localhost", another origin;
// /mcp on the host origin is a proxy to hostmcp that adds the bearer token and counts tool calls.
// Chromium (playwright-core, headless) loads the page; the host page calls run_command, which
// waits for approval; the script waits for the view to show the request, reads what it shows,
// clicks Approve or Deny on the view's own request (after the other token's, when asked), waits for the call to end and the view to show its result, and prints
// one JSON report on stdout. Every wait is bounded; the browser and both servers are closed on
// every path, and a watchdog exits the process if anything hangs.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODULES = process.env.HOSTMCP_BROWSER_NODE_MODULES;
const MCP_URL = process.env.HOSTMCP_MCP_URL;
const TOKEN = process.env.HOSTMCP_TOKEN;
const DECISION = process.env.HOSTMCP_DECISION;
const MARKER = process.env.HOSTMCP_MARKER;
const CHROMIUM = process.env.HOSTMCP_CHROMIUM || "/usr/bin/chromium";
const TOOL = process.env.HOSTMCP_TOOL || "run_command";
const ARGS = process.env.HOSTMCP_ARGS || "";
const OTHER = process.env.HOSTMCP_OTHER || "";
const OTHER_DECISION = process.env.HOSTMCP_OTHER_DECISION || "";
const STEP_MS = 45000;
const WATCHDOG_MS = 150000;
if (!MODULES || !MCP_URL || !TOKEN || !MARKER || !["approve", "deny", ...(OTHER ? ["none"] : [])].includes(DECISION)
    || (OTHER && !["approve", "deny"].includes(OTHER_DECISION))) {
  console.error("drive.mjs: set HOSTMCP_BROWSER_NODE_MODULES, HOSTMCP_MCP_URL, HOSTMCP_TOKEN, HOSTMCP_MARKER and HOSTMCP_DECISION");
  process.exit(2);
}
setTimeout(() => {
  console.error(`drive.mjs: watchdog: still running after ${WATCHDOG_MS} ms`);
  process.exit(3);
}, WATCHDOG_MS).unref();

const require = createRequire(path.join(MODULES, "noop.js"));
const esbuild = require("esbuild");
const { chromium } = require("playwright-core");

const toolCalls = {};
const FORWARDED = ["content-type", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"];

async function bundleHostPage() {
  const built = await esbuild.build({
    entryPoints: [path.join(HERE, "host_page.js")],
    bundle: true, format: "esm", platform: "browser", target: "es2022",
    write: false, nodePaths: [MODULES], logLevel: "error",
  });
  return built.outputFiles[0].text;
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function record(body) {
  let messages;
  try {
    messages = JSON.parse(body.toString());
  } catch {
    return;
  }
  for (const message of Array.isArray(messages) ? messages : [messages]) {
    if (message?.method === "tools/call") {
      const name = message.params?.name;
      toolCalls[name] = (toolCalls[name] || 0) + 1;
    }
  }
}

/** /mcp on the host origin: forward to hostmcp with the token; stream the answer back. */
async function proxy(request, response) {
  const body = request.method === "POST" ? await readBody(request) : undefined;
  if (body) record(body);
  const headers = { authorization: `Bearer ${TOKEN}` };
  for (const name of FORWARDED) if (request.headers[name]) headers[name] = request.headers[name];
  const abort = new AbortController();
  response.on("close", () => abort.abort());
  let upstream;
  try {
    upstream = await fetch(MCP_URL, { method: request.method, headers, body, signal: abort.signal });
  } catch (error) {
    response.writeHead(502).end(String(error));
    return;
  }
  const out = {};
  for (const name of ["content-type", "mcp-session-id", "cache-control"]) {
    const value = upstream.headers.get(name);
    if (value) out[name] = value;
  }
  response.writeHead(upstream.status, out);
  if (!upstream.body) return response.end();
  Readable.fromWeb(upstream.body).on("error", () => response.destroy()).pipe(response);
}

/** The spec's CSP for a view, from its _meta.ui.csp (empty lists here: nothing outside). */
function viewCsp() {
  return ["default-src 'none'", "script-src 'self' 'unsafe-inline'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:", "connect-src 'none'", "frame-src 'none'", "object-src 'none'", "base-uri 'self'"].join("; ");
}

function listen(handler) {
  return new Promise((resolve) => {
    const server = createServer((request, response) => {
      handler(request, response).catch((error) => {
        if (!response.headersSent) response.writeHead(500);
        response.end(String(error));
      });
    });
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

async function until(what, probe, timeoutMs = STEP_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function run() {
  const hostJs = await bundleHostPage();
  const sandboxHtml = readFileSync(path.join(HERE, "..", "dashboard", "sandbox.html"));
  const sandboxServer = await listen(async (request, response) => {
    const url = new URL(request.url, "http://localhost");
    if (url.pathname !== "/sandbox.html") return void response.writeHead(404).end();
    response.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-security-policy": viewCsp() });
    response.end(sandboxHtml);
  });
  const sandboxUrl = `http://localhost:${sandboxServer.address().port}/sandbox.html`;
  const hostServer = await listen(async (request, response) => {
    const url = new URL(request.url, "http://127.0.0.1");
    if (url.pathname === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end('<!DOCTYPE html><html><head><meta charset="utf-8"><title>MCP Apps test host</title></head>'
        + '<body><script type="module" src="/host.js"></script></body></html>');
    } else if (url.pathname === "/host.js") {
      response.writeHead(200, { "content-type": "text/javascript" });
      response.end(hostJs);
    } else if (url.pathname === "/mcp") {
      await proxy(request, response);
    } else {
      response.writeHead(404).end();
    }
  });
  const hostOrigin = `http://127.0.0.1:${hostServer.address().port}`;

  const args = ["--headless=new"];
  if (process.getuid?.() === 0) args.push("--no-sandbox");
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: STEP_MS });
    const page = await browser.newPage({ viewport: { width: 800, height: 700 } });
    const requests = [];
    const console_ = [];
    const depth = (frame) => {
      let n = 0;
      for (let f = frame.parentFrame(); f; f = f.parentFrame()) n++;
      return n;
    };
    page.on("request", (r) => requests.push({ url: r.url(), frameDepth: depth(r.frame()) }));
    page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));

    let query = `sandbox=${encodeURIComponent(sandboxUrl)}&marker=${encodeURIComponent(MARKER)}`;
    query += `&tool=${encodeURIComponent(TOOL)}`;
    if (ARGS) query += `&args=${encodeURIComponent(ARGS)}`;
    await page.goto(`${hostOrigin}/?${query}`, { timeout: STEP_MS });
    const hostState = () => page.evaluate(() => window.__host);
    await until("the host page to call run_command", async () => {
      const state = await hostState();
      if (state?.phase === "failed") throw new Error(`host page failed: ${state.error}`);
      return state && ["waiting", "done"].includes(state.phase);
    });
    const view = await until("the view's frame", async () => page.frames().find((f) => depth(f) === 2) ?? null);
    const read = (selector) => view.evaluate((selector) => {
      const card = document.querySelector(selector);
      if (!card) return null;
      const text = (name) => card.querySelector(`dd.${name}`)?.textContent ?? null;
      return {
        id: card.dataset.id, tool: card.dataset.tool, own: card.dataset.own, kind: card.querySelector("h2.kind")?.textContent,
        command: text("command"), program: text("program"), workingDir: text("working-dir"),
        runAs: text("run-as"), rule: text("rule"), reason: text("reason"), principal: text("principal"),
        expires: text("expires"), status: document.getElementById("status").textContent,
      };
    }, selector);
    let other = null;
    if (OTHER) {
      const card = `section.request[data-own="false"][data-principal="${OTHER}"]`;
      const shownOther = await until(`the view to show ${OTHER}'s request`, () => read(card));
      await view.click(`${card} button.${OTHER_DECISION}`, { timeout: STEP_MS });
      const outcome = await until(`the view's decision of ${OTHER}'s request`, () => view.evaluate((card) => {
        const text = document.querySelector(`${card} .outcome`)?.textContent;
        return text || null;
      }, card));
      other = { shown: shownOther, outcome };
    }
    const own = 'section.request[data-own="true"]';
    let shown = null;
    let decided = null;
    if (DECISION !== "none") {
      shown = await until("the view to show the waiting request", () => read(own));
      await view.click(`${own} button.${DECISION}`, { timeout: STEP_MS });
      decided = await until("the view's decision", () => view.evaluate((own) => {
        const outcome = document.querySelector(`${own} .outcome`);
        if (outcome?.classList.contains("approved")) return "approve";
        if (outcome?.classList.contains("denied")) return outcome.textContent.startsWith("Denied") ? "deny" : null;
        return null;
      }, own));
    }
    const host = await until("run_command to end", async () => {
      const state = await hostState();
      if (state?.phase === "failed") throw new Error(`host page failed: ${state.error}`);
      return state?.phase === "done" ? state : null;
    });
    const viewResult = await until("the view to show the result", () =>
      view.evaluate(() => document.documentElement.dataset.result ?? null));
    const { resultTitle, resultNext, resultKind } = await view.evaluate(() => ({
      resultTitle: document.getElementById("result-title").textContent,
      resultNext: document.getElementById("result-next").hidden ? null : document.getElementById("result-next").textContent,
      resultKind: document.documentElement.dataset.resultKind ?? null,
    }));
    return { shown, other, decided, result: host.result, modelTools: host.modelTools, viewResult, resultTitle,
      resultNext, resultKind, toolCalls, requests, hostOrigin, console: console_ };
  } finally {
    if (browser) await browser.close().catch(() => {});
    hostServer.closeAllConnections?.();
    sandboxServer.closeAllConnections?.();
    hostServer.close();
    sandboxServer.close();
  }
}

run().then(
  (report) => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(0);
  },
  (error) => {
    console.error(`drive.mjs: ${error?.stack ?? error}`);
    process.exit(1);
  },
);
