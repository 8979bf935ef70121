// Shared by the browser tests: launching Debian Chromium with the flags this machine needs,
// keyboard navigation helpers, and the one-JSON-object-per-line event output the Rust test reads.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";

// How long one step may take (an agent's answer goes through the router and NATS).
export const STEP_TIMEOUT_MS = 30_000;
// Most Tab presses to reach a control: more means it is not reachable by keyboard.
const MAX_TABS = 25;
// Without the background-networking flags Chromium keeps trying Google's hosts, which this
// machine's closed network refuses; the profile is a fresh directory every run.
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function emit(event, fields = {}) {
  console.log(JSON.stringify({ event, ...fields }));
}

export function fail(message) {
  throw new Error(message);
}

// Presses Tab until `matches` holds for the focused element; fails after MAX_TABS.
export async function tabTo(page, what, matches) {
  for (let i = 0; i < MAX_TABS; i++) {
    if (await page.evaluate(matches)) {
      return;
    }
    await page.keyboard.press("Tab");
  }
  fail(`${what} is not reachable with Tab (${MAX_TABS} presses)`);
}

// A page-side check that the focused element has this role and accessible label.
export const focusedIs = (role, name) => `(() => {
  const el = document.activeElement;
  if (!el) return false;
  const label = (el.getAttribute("aria-label") || (el.labels && el.labels[0] && el.labels[0].textContent) || el.textContent || "").trim();
  const tag = el.tagName.toLowerCase();
  const kind = tag === "button" ? "button" : tag === "textarea" || (tag === "input" && el.type !== "submit") ? "textbox" : tag === "select" ? "combobox" : tag;
  return kind === ${JSON.stringify(role)} && label === ${JSON.stringify(name)};
})()`;

// Runs `scenario(page)` in a fresh headless Chromium (CARELINE_CHROMIUM, else
// /usr/bin/chromium; never downloaded), failing on script errors and failed loads; exits 1 with
// the reason on stderr when anything fails.
export async function withBrowser(scenario) {
  const profile = mkdtempSync(join(tmpdir(), "careline-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CARELINE_CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1000, height: 760 },
      locale: "en-US",
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    // Script errors and failed loads (but the favicon, which the gateway does not serve).
    const pageErrors = [];
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("response", (response) => {
      if (response.status() >= 400 && !response.url().endsWith("/favicon.ico")) {
        pageErrors.push(`${response.status()} for ${response.url()}`);
      }
    });
    await scenario(page);
    if (pageErrors.length > 0) fail(`the page had errors: ${pageErrors.join(" | ")}`);
    emit("passed");
  } catch (err) {
    console.error(`browser test failed: ${err.message}`);
    process.exitCode = 1;
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// The demo page of the gateway at `gatewayUrl`.
export function demoUrl(gatewayUrl) {
  return new URL("demo", gatewayUrl.endsWith("/") ? gatewayUrl : gatewayUrl + "/").href;
}

// Saves a screenshot of `page` at `path`, making its directory.
export async function saveScreenshot(page, path, fullPage = false) {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage });
}

// Opens the chat widget of the demo page by keyboard and starts a chat with `firstMessage`
// while the tenant is closed; returns the after-hours panel once it shows.
export async function startChatWhileClosed(page, gatewayUrl, firstMessage) {
  await page.goto(demoUrl(gatewayUrl));
  await tabTo(page, "the chat launcher", focusedIs("button", "Chat with us"));
  await page.keyboard.press("Enter");
  await tabTo(page, "the first message field", focusedIs("textbox", "How can we help?"));
  await page.keyboard.type(firstMessage);
  await tabTo(page, "the start button", focusedIs("button", "Start chat"));
  await page.keyboard.press("Enter");
  const closed = page.locator(".cl-after-hours");
  await closed.getByRole("heading", { name: "We are closed right now" }).waitFor();
  return closed;
}

// A form refused `field` in the page: waits for the input matching `selector` to be marked
// invalid, checks that focus went to it (a textbox labelled `label`), and returns the error
// text linked to it.
export async function refusedFieldError(page, selector, label, field) {
  const invalid = page.locator(`${selector}[aria-invalid="true"]`);
  await invalid.waitFor();
  if (!(await page.evaluate(focusedIs("textbox", label)))) {
    fail(`after a bad ${field}, focus did not go to the ${field} field`);
  }
  const described = await invalid.getAttribute("aria-describedby");
  return await page.locator(`[id="${described}"]`).textContent();
}
