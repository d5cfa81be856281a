// Drives hostmcp's MCP Apps dashboard in a real browser for tests/e2e/test_dashboard.py.
//
//   HOSTMCP_MCP_URL=http://127.0.0.1:PORT/mcp HOSTMCP_TOKEN=... \
//   HOSTMCP_BROWSER_NODE_MODULES=.test-deps/browser/node_modules node drive.mjs
//
// It serves, on loopback only, a host page (host_page.js bundled with esbuild: the SDK client
// plus ext-apps' AppBridge) on 127.0.0.1 and the sandbox proxy (sandbox.html) on "localhost",
// another origin; /mcp on the host origin is a proxy to hostmcp that adds the bearer token.
// Chromium (playwright-core, headless) loads the page; the script waits for the view to
// render and to update, reads /proc at the moment it reads the view's figures, probes the
// view's CSP, and prints one JSON report on stdout. Every wait is bounded; the browser and
// both servers are closed on every path, and a watchdog exits the process if anything hangs.
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODULES = process.env.HOSTMCP_BROWSER_NODE_MODULES;
const MCP_URL = process.env.HOSTMCP_MCP_URL;
const TOKEN = process.env.HOSTMCP_TOKEN;
const CHROMIUM = process.env.HOSTMCP_CHROMIUM || "/usr/bin/chromium";
const SCREENSHOT = process.env.HOSTMCP_DASHBOARD_SCREENSHOT || "";
const STEP_MS = Number(process.env.HOSTMCP_DASHBOARD_STEP_MS || 45000);
const WATCHDOG_MS = Number(process.env.HOSTMCP_DASHBOARD_WATCHDOG_MS || 150000);
if (!MODULES || !MCP_URL || !TOKEN) {
  console.error("drive.mjs: set HOSTMCP_BROWSER_NODE_MODULES, HOSTMCP_MCP_URL and HOSTMCP_TOKEN");
  process.exit(2);
}
setTimeout(() => {
  console.error(`drive.mjs: watchdog: still running after ${WATCHDOG_MS} ms`);
  process.exit(3);
}, WATCHDOG_MS).unref();

const require = createRequire(path.join(MODULES, "noop.js"));
const esbuild = require("esbuild");
const { chromium } = require("playwright-core");

// ------------------------------------------------------------------ the host's servers
const hits = { probe: 0, mcpMethods: [], toolCalls: {} };
const FORWARDED = ["content-type", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"];

async function bundleHostPage() {
  const built = await esbuild.build({
    entryPoints: [path.join(HERE, "host_page.js")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    nodePaths: [MODULES],
    logLevel: "error",
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
    if (!message?.method) continue;
    hits.mcpMethods.push(message.method);
    if (message.method === "tools/call") {
      const name = message.params?.name;
      hits.toolCalls[name] = (hits.toolCalls[name] || 0) + 1;
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

/** The spec's CSP for a view, from its _meta.ui.csp (as a web host builds it). */
function viewCsp(csp) {
  const clean = (list) => (Array.isArray(list) ? list : []).filter((d) => typeof d === "string" && !/[;\r\n'" ]/.test(d));
  const resources = clean(csp.resourceDomains).join(" ");
  const connect = clean(csp.connectDomains).join(" ");
  const frames = clean(csp.frameDomains).join(" ");
  const bases = clean(csp.baseUriDomains).join(" ");
  return [
    "default-src 'none'",
    `script-src 'self' 'unsafe-inline' ${resources}`.trim(),
    `style-src 'self' 'unsafe-inline' ${resources}`.trim(),
    `img-src 'self' data: ${resources}`.trim(),
    `font-src 'self' ${resources}`.trim(),
    `media-src 'self' data: ${resources}`.trim(),
    `connect-src ${connect || "'none'"}`,
    `frame-src ${frames || "'none'"}`,
    "object-src 'none'",
    `base-uri ${bases || "'self'"}`,
  ].join("; ");
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

// ------------------------------------------------------------------ /proc at a moment
function procNow() {
  const [one, five, fifteen] = readFileSync("/proc/loadavg", "utf8").split(" ").map(Number);
  const meminfo = Object.fromEntries(
    readFileSync("/proc/meminfo", "utf8").trim().split("\n").map((line) => {
      const [key, rest] = line.split(":");
      return [key, Number.parseInt(rest, 10) * 1024];
    }),
  );
  const pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number);
  return { load: { one, five, fifteen }, memTotal: meminfo.MemTotal, memAvailable: meminfo.MemAvailable, pids };
}

/** The view's figures, by the data-* attributes the page writes beside its text. */
function readView(frame) {
  return frame.evaluate(() => {
    const value = (id) => {
      const element = document.getElementById(id);
      return element && element.dataset.value !== undefined ? Number(element.dataset.value) : null;
    };
    const text = (id) => document.getElementById(id)?.textContent ?? null;
    return {
      updates: Number(document.documentElement.dataset.updates || 0),
      initialized: document.documentElement.dataset.initialized === "true",
      status: text("status"),
      hostname: text("hostname"),
      load1: value("load1"),
      load1Text: text("load1"),
      cpus: value("cpus"),
      memTotal: value("mem-total"),
      memAvailable: value("mem-available"),
      uptime: value("uptime"),
      processes: value("processes"),
      topPids: [...document.querySelectorAll("#top tr")].map((row) => Number(row.dataset.pid)),
      disks: [...document.querySelectorAll("#disks tr")].map((row) => ({
        mount: row.dataset.mount, size: Number(row.dataset.size),
      })),
      metaCsp: document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.content ?? null,
    };
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

// ------------------------------------------------------------------ the run
async function run() {
  const hostJs = await bundleHostPage();
  const sandboxHtml = readFileSync(path.join(HERE, "sandbox.html"));
  const sandboxServer = await listen(async (request, response) => {
    const url = new URL(request.url, "http://localhost");
    if (url.pathname !== "/sandbox.html") return void response.writeHead(404).end();
    const csp = JSON.parse(url.searchParams.get("csp") || "{}");
    response.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-security-policy": viewCsp(csp) });
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
    } else if (url.pathname === "/probe") {
      hits.probe++;
      response.writeHead(200, { "access-control-allow-origin": "*" }).end("probe");
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
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const requests = [];
    const console_ = [];
    let sandboxCspHeader = null;
    const depth = (frame) => {
      let n = 0;
      for (let f = frame.parentFrame(); f; f = f.parentFrame()) n++;
      return n;
    };
    page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), frameDepth: depth(r.frame()) }));
    page.on("response", (r) => {
      if (r.url().startsWith(sandboxUrl)) sandboxCspHeader = r.headers()["content-security-policy"] ?? null;
    });
    page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));

    const started = Date.now();
    await page.goto(`${hostOrigin}/?sandbox=${encodeURIComponent(sandboxUrl)}`, { timeout: STEP_MS });
    const host = await until("the host page to start the view", async () => {
      const state = await page.evaluate(() => window.__host);
      return state && ["running", "failed"].includes(state.phase) ? state : null;
    });
    if (host.phase === "failed") throw new Error(`host page failed: ${host.error}`);

    const view = await until("the view's frame", async () =>
      page.frames().find((f) => depth(f) === 2) ?? null);
    const first = await until("the view's first figures", async () => {
      const figures = await readView(view);
      return figures.updates >= 1 && figures.load1 !== null && figures.topPids.length > 0 ? figures : null;
    });
    const procFirst = procNow();
    const firstFiguresMs = Date.now() - started;
    const livePids = first.topPids.filter((pid) => procFirst.pids.includes(pid));
    const second = await until("the view to update", async () => {
      const figures = await readView(view);
      return figures.updates > first.updates && figures.uptime > first.uptime ? figures : null;
    });
    const procSecond = procNow();
    const updateMs = Date.now() - started - firstFiguresMs;
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Network: everything the page loaded so far, then the CSP probe.
    const requestsBeforeProbe = requests.slice();
    const probeUrl = `${hostOrigin}/probe`;
    const viewProbe = await view.evaluate(async (url) => {
      const violations = [];
      document.addEventListener("securitypolicyviolation", (e) => violations.push(e.effectiveDirective));
      let outcome;
      try {
        await fetch(url);
        outcome = "loaded";
      } catch {
        outcome = "blocked";
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { outcome, violations };
    }, probeUrl);
    const probeHitsFromView = hits.probe;
    // Near miss: the same fetch from the host page (no such CSP) reaches the probe.
    const hostProbe = await page.evaluate(async (url) => (await fetch(url)).status, probeUrl);

    return {
      host: { serverExtension: host.serverExtension, toolMeta: host.toolMeta, processListMeta: host.processListMeta,
        uri: host.uri, listed: host.listed, csp: host.csp },
      first, second, timings: { firstFiguresMs, updateMs },
      proc: { first: { ...procFirst, pids: procFirst.pids.length }, second: { ...procSecond, pids: procSecond.pids.length } },
      livePids,
      hostOrigin, sandboxOrigin: new URL(sandboxUrl).origin,
      requests: requestsBeforeProbe,
      sandboxCspHeader,
      viewProbe, probeHitsFromView, hostProbe, probeHitsAfterHost: hits.probe,
      mcpMethods: hits.mcpMethods, toolCalls: hits.toolCalls,
      console: console_,
    };
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
