// Drives hostmcp's OAuth authorization server through whole flows in a real browser, for
// tests/e2e/test_oauth_browser.py.
//
//   HOSTMCP_BROWSER_NODE_MODULES=.test-deps/browser/node_modules HOSTMCP_BASE=http://127.0.0.1:PORT \
//   HOSTMCP_TOKEN=<an operator token> HOSTMCP_CIMD_URL=https://127.0.0.1:PORT/clients/chatgpt.json \
//   node flow.mjs
//
// Three clients, each approved in Debian's chromium (playwright-core, headless) by typing the
// owner's token into the consent page and pressing Approve:
// - "claude":  a claude.ai-like backend: Dynamic Client Registration with the callback
//   https://claude.ai/api/mcp/auth_callback, PKCE S256, `resource`, `scope`.
// - "chatgpt": a ChatGPT-like backend: its client_id is the https URL of its metadata
//   document (served over TLS by the test, with a test CA hostmcp trusts), the callback
//   https://chatgpt.com/connector_platform_oauth_redirect, no `scope` at all; it
//   re-authorizes (again without scope) and refreshes without scope.
// - "sdk":     the TypeScript SDK's own OAuth client (@modelcontextprotocol/client's
//   OAuthClientProvider through StreamableHTTPClientTransport): discovery from the 401, DCR,
//   PKCE, and the code exchange are the SDK's; its redirectToAuthorization hands the URL to
//   the browser; a loopback callback, as desktop clients use.
// The callbacks are intercepted with page.route and answered in the browser, and every other
// request that is not to 127.0.0.1 is aborted: nothing leaves the machine. After each
// approval the access token lists the tools and calls run_command over /mcp with the SDK
// client; the time from pressing Approve to that call's answer is measured
// (consent-to-first-call). One JSON report on stdout. Every wait is bounded; the browser is
// closed on every path, and a watchdog exits the process if anything hangs.
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { performance } from "node:perf_hooks";

const MODULES = process.env.HOSTMCP_BROWSER_NODE_MODULES;
const BASE = process.env.HOSTMCP_BASE;
const TOKEN = process.env.HOSTMCP_TOKEN;
const CIMD_URL = process.env.HOSTMCP_CIMD_URL;
const CHROMIUM = process.env.HOSTMCP_CHROMIUM || "/usr/bin/chromium";
const ROUNDS = Number(process.env.HOSTMCP_OAUTH_ROUNDS || 5);
const STEP_MS = Number(process.env.HOSTMCP_OAUTH_STEP_MS || 30000);
const WATCHDOG_MS = Number(process.env.HOSTMCP_OAUTH_WATCHDOG_MS || 240000);
if (!MODULES || !BASE || !TOKEN || !CIMD_URL) {
  console.error("flow.mjs: set HOSTMCP_BROWSER_NODE_MODULES, HOSTMCP_BASE, HOSTMCP_TOKEN and HOSTMCP_CIMD_URL");
  process.exit(2);
}
setTimeout(() => {
  console.error(`flow.mjs: watchdog: still running after ${WATCHDOG_MS} ms`);
  process.exit(3);
}, WATCHDOG_MS).unref();

const require = createRequire(path.join(MODULES, "noop.js"));
const { chromium } = require("playwright-core");
const sdk = require("@modelcontextprotocol/client");

const MCP_URL = `${BASE}/mcp`;
const CLAUDE_CALLBACK = "https://claude.ai/api/mcp/auth_callback";
const CHATGPT_CALLBACK = "https://chatgpt.com/connector_platform_oauth_redirect";
const SDK_CALLBACK = "http://127.0.0.1:33418/oauth/callback";

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
function pkce() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash("sha256").update(verifier).digest()) };
}

function withTimeout(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms: ${what}`)), STEP_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function postForm(url, fields) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

// ------------------------------------------------------------------ the browser
/** Routes of one page: callbacks answered in the browser; nothing off 127.0.0.1 leaves. */
class Browser {
  constructor(page) {
    this.page = page;
    this.waiting = null;
    this.callbacks = [];
    this.blocked = [];
  }

  async install() {
    await this.page.route("**/*", async (route) => {
      const url = route.request().url();
      const callback = [CLAUDE_CALLBACK, CHATGPT_CALLBACK, SDK_CALLBACK].find((prefix) => url.startsWith(prefix));
      if (callback) {
        this.callbacks.push(url);
        const waiting = this.waiting;
        this.waiting = null;
        await route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>callback</title>ok" });
        if (waiting) waiting(url);
        return;
      }
      if (new URL(url).hostname === "127.0.0.1") return route.continue();
      this.blocked.push(url);
      return route.abort();
    });
  }

  /**
   * Open the consent page at `authorizeUrl`, read what it shows, enter the token and press
   * Approve; resolve with the callback URL and the instant Approve was pressed.
   */
  async consent(authorizeUrl) {
    const page = this.page;
    const response = await withTimeout(page.goto(authorizeUrl), "the consent page");
    const headers = response.headers();
    const shown = await page.evaluate(() => ({
      text: document.body.innerText,
      scripts: document.scripts.length,
      title: document.title,
    }));
    await page.fill("#token", TOKEN);
    const arrived = new Promise((resolve) => {
      this.waiting = resolve;
    });
    const pressed = performance.now();
    await page.click('button[value="approve"]');
    const callback = await withTimeout(arrived, "the redirect to the callback");
    return {
      callback,
      pressed,
      status: response.status(),
      csp: headers["content-security-policy"] || "",
      frameOptions: headers["x-frame-options"] || "",
      shown,
    };
  }
}

// ------------------------------------------------------------------ MCP with a token
async function firstCall(accessToken, label) {
  const transport = new sdk.StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { authorization: `Bearer ${accessToken}` } },
  });
  const client = new sdk.Client({ name: `oauth-browser-${label}`, version: "1.0.0" });
  try {
    await withTimeout(client.connect(transport), "connect");
    const result = await withTimeout(
      client.callTool({ name: "run_command", arguments: { command: `echo via-${label}` } }),
      "run_command",
    );
    return result;
  } finally {
    await client.close().catch(() => {});
  }
}

function params(callback) {
  return Object.fromEntries(new URL(callback).searchParams);
}

// ------------------------------------------------------------------ claude.ai-like (DCR)
async function claudeLike(browser) {
  const registered = await fetch(`${BASE}/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Claude",
      redirect_uris: [CLAUDE_CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }),
  });
  const client = await registered.json();
  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    const { verifier, challenge } = pkce();
    const state = b64url(randomBytes(16));
    const authorize = new URL(`${BASE}/oauth/authorize`);
    for (const [key, value] of Object.entries({
      response_type: "code",
      client_id: client.client_id,
      redirect_uri: CLAUDE_CALLBACK,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state,
      scope: "hostmcp",
      resource: MCP_URL,
    })) authorize.searchParams.set(key, value);
    const seen = await browser.consent(authorize.href);
    const got = params(seen.callback);
    const token = await postForm(`${BASE}/oauth/token`, {
      grant_type: "authorization_code",
      code: got.code,
      redirect_uri: CLAUDE_CALLBACK,
      client_id: client.client_id,
      code_verifier: verifier,
      resource: MCP_URL,
    });
    const result = await firstCall(token.body.access_token, "claude");
    rounds.push({
      consentToFirstCallMs: performance.now() - seen.pressed,
      stateMatches: got.state === state,
      iss: got.iss,
      hasCode: Boolean(got.code),
      callbackOrigin: new URL(seen.callback).origin + new URL(seen.callback).pathname,
      tokenStatus: token.status,
      scope: token.body.scope,
      stdout: result.structuredContent?.stdout,
      isError: Boolean(result.isError),
      page: round === 0 ? seen : undefined,
    });
  }
  return { registeredStatus: registered.status, clientId: client.client_id, rounds };
}

// ------------------------------------------------------------------ ChatGPT-like (CIMD)
async function chatgptLike(browser) {
  const rounds = [];
  let refresh = null;
  for (let round = 0; round < ROUNDS; round++) {
    const { verifier, challenge } = pkce();
    const state = b64url(randomBytes(16));
    const authorize = new URL(`${BASE}/oauth/authorize`);
    // No scope, ever: ChatGPT drops it (and re-authorizes without it).
    for (const [key, value] of Object.entries({
      response_type: "code",
      client_id: CIMD_URL,
      redirect_uri: CHATGPT_CALLBACK,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state,
      resource: MCP_URL,
    })) authorize.searchParams.set(key, value);
    const seen = await browser.consent(authorize.href);
    const got = params(seen.callback);
    const token = await postForm(`${BASE}/oauth/token`, {
      grant_type: "authorization_code",
      code: got.code,
      redirect_uri: CHATGPT_CALLBACK,
      client_id: CIMD_URL,
      code_verifier: verifier,
      resource: MCP_URL,
    });
    const result = await firstCall(token.body.access_token, "chatgpt");
    refresh = token.body.refresh_token;
    rounds.push({
      consentToFirstCallMs: performance.now() - seen.pressed,
      stateMatches: got.state === state,
      iss: got.iss,
      hasCode: Boolean(got.code),
      callbackOrigin: new URL(seen.callback).origin + new URL(seen.callback).pathname,
      tokenStatus: token.status,
      scope: token.body.scope,
      stdout: result.structuredContent?.stdout,
      isError: Boolean(result.isError),
      page: round === 0 ? seen : undefined,
    });
  }
  // A refresh without scope, then the refreshed token calls.
  const refreshed = await postForm(`${BASE}/oauth/token`, {
    grant_type: "refresh_token",
    refresh_token: refresh,
    client_id: CIMD_URL,
  });
  const afterRefresh = await firstCall(refreshed.body.access_token, "chatgpt-refreshed");
  return {
    clientId: CIMD_URL,
    rounds,
    refresh: {
      status: refreshed.status,
      scope: refreshed.body.scope,
      stdout: afterRefresh.structuredContent?.stdout,
    },
  };
}

// ------------------------------------------------------------------ the TypeScript SDK's client
class MemoryProvider {
  constructor(onRedirect) {
    this.onRedirect = onRedirect;
    this.saved = {};
    this.stateValue = b64url(randomBytes(16));
  }
  get redirectUrl() {
    return SDK_CALLBACK;
  }
  get clientMetadata() {
    return {
      client_name: "TypeScript SDK e2e",
      redirect_uris: [SDK_CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    return this.stateValue;
  }
  clientInformation() {
    return this.saved.client;
  }
  saveClientInformation(info) {
    this.saved.client = info;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.onRedirect(url);
  }
  saveCodeVerifier(verifier) {
    this.saved.verifier = verifier;
  }
  codeVerifier() {
    return this.saved.verifier;
  }
}

async function sdkClient(browser) {
  let authorizationUrl = null;
  const provider = new MemoryProvider((url) => {
    authorizationUrl = url;
  });
  const connect = async () => {
    const transport = new sdk.StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
    const client = new sdk.Client({ name: "oauth-browser-sdk", version: "1.0.0" });
    await withTimeout(client.connect(transport), "connect with the auth provider");
    return { transport, client };
  };
  // The first connection gets the 401; the SDK discovers, registers and redirects.
  let unauthorized = null;
  let first;
  try {
    first = await connect();
  } catch (error) {
    unauthorized = error;
  }
  if (first) throw new Error("the first connection was not asked to authorize");
  if (!authorizationUrl) throw new Error(`the SDK did not redirect: ${unauthorized}`);
  const seen = await browser.consent(authorizationUrl.href);
  const got = params(seen.callback);
  const finishing = new sdk.StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  await withTimeout(finishing.finishAuth(new URL(seen.callback).searchParams), "finishAuth");
  const { client } = await connect();
  try {
    const tools = await withTimeout(client.listTools(), "tools/list");
    const result = await withTimeout(
      client.callTool({ name: "run_command", arguments: { command: "echo via-sdk" } }),
      "run_command",
    );
    return {
      unauthorized: String(unauthorized?.name || unauthorized),
      authorizeParams: Object.fromEntries(authorizationUrl.searchParams),
      registeredClientId: provider.saved.client?.client_id,
      stateMatches: got.state === provider.stateValue,
      iss: got.iss,
      consentToFirstCallMs: performance.now() - seen.pressed,
      tools: tools.tools.map((tool) => tool.name),
      stdout: result.structuredContent?.stdout,
      isError: Boolean(result.isError),
      hasRefreshToken: Boolean(provider.saved.tokens?.refresh_token),
    };
  } finally {
    await client.close().catch(() => {});
  }
}

// ------------------------------------------------------------------ main
const args = ["--headless=new"];
if (process.getuid?.() === 0) args.push("--no-sandbox");
let browser;
let code = 0;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: STEP_MS });
  const context = await browser.newContext();
  const page = await context.newPage();
  const driver = new Browser(page);
  await driver.install();
  const report = {};
  report.claude = await claudeLike(driver);
  report.chatgpt = await chatgptLike(driver);
  report.sdk = await sdkClient(driver);
  report.blocked = driver.blocked;
  report.callbacks = driver.callbacks.length;
  process.stdout.write(JSON.stringify(report));
} catch (error) {
  console.error(`flow.mjs: ${error?.stack || error}`);
  code = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(code);
