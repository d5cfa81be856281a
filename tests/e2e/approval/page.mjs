// Decides one approval on hostmcp's approval page in a real browser, for
// tests/e2e/test_approval.py:
//
//   HOSTMCP_APPROVAL_URL=http://127.0.0.1:PORT/approvals/ap-...?t=... HOSTMCP_TOKEN=... \
//   HOSTMCP_DECISION=approve|deny HOSTMCP_BROWSER_NODE_MODULES=.test-deps/browser/node_modules \
//   node page.mjs
//
// Chromium (playwright-core, headless, JavaScript off: the page needs none) opens the URL,
// reads what the page shows, types the token, presses the button, and prints one JSON
// report on stdout. Every wait is bounded; the browser is closed on every path, and a
// watchdog exits the process if anything hangs.
import { createRequire } from "node:module";
import path from "node:path";

const MODULES = process.env.HOSTMCP_BROWSER_NODE_MODULES;
const URL = process.env.HOSTMCP_APPROVAL_URL;
const TOKEN = process.env.HOSTMCP_TOKEN;
const DECISION = process.env.HOSTMCP_DECISION;
const CHROMIUM = process.env.HOSTMCP_CHROMIUM || "/usr/bin/chromium";
const STEP_MS = 30000;
if (!MODULES || !URL || !TOKEN || !["approve", "deny"].includes(DECISION)) {
  console.error("page.mjs: set HOSTMCP_BROWSER_NODE_MODULES, HOSTMCP_APPROVAL_URL, HOSTMCP_TOKEN, HOSTMCP_DECISION");
  process.exit(2);
}
setTimeout(() => {
  console.error("page.mjs: watchdog: still running after 90 s");
  process.exit(3);
}, 90000).unref();

const require = createRequire(path.join(MODULES, "noop.js"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox"],
  timeout: STEP_MS,
});
try {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const shown = await page.goto(URL);
  const report = {
    status: shown.status(),
    csp: shown.headers()["content-security-policy"] || "",
    tool: await page.textContent("#tool"),
    command: await page.textContent("#command"),
    stdin: await page.textContent("#stdin"),
    run_as: await page.textContent("#run-as"),
    rule: await page.textContent("#rule"),
    reason: await page.textContent("#reason"),
  };
  await page.fill("#token", TOKEN);
  const [answer] = await Promise.all([
    page.waitForNavigation(),
    page.click(DECISION === "approve" ? "#approve" : "#deny"),
  ]);
  report.answer_status = answer ? answer.status() : null;
  const shownAfter = async (selector) =>
    (await page.locator(selector).count()) ? await page.textContent(selector) : null;
  report.title = await shownAfter("#title");
  report.error = await shownAfter("#error");
  // The same URL again: used once, so it is gone.
  const again = await page.goto(URL);
  report.again_status = again.status();
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
}
