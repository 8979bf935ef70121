// Browser test of the supervisors' floor view: headless Debian Chromium driven by playwright-core.
//
//   CARELINE_API_KEY=... node tests/browser/floor.mjs CONSOLE_URL SCREENSHOT_PATH
//
// Opens CONSOLE_URL/floor and, with the keyboard only, signs in with the tenant key. Then waits
// for the numbers to change as the caller drives the router over gRPC: it prints "signed_in" and
// waits until the Member services queue shows two contacts waiting; prints "waiting_seen" and waits
// until today's answered count is 1, agent ana is listed and one contact still waits; prints
// "quality_seen" once ana's scored contact shows in today's quality. Checks the page's landmarks, table
// headers and live regions, saves a screenshot, and switches to Spanish with the keyboard.
//
// Prints one JSON object per line on stdout ({"event": ...}); the caller reads them. Exits 0 when
// every step passed, 1 with the reason on stderr otherwise (lib.mjs).
import { emit, fail, focusedIs, saveScreenshot, tabTo, withBrowser } from "./lib.mjs";

const [consoleUrl, screenshotPath] = process.argv.slice(2);
const apiKey = process.env.CARELINE_API_KEY;
if (!consoleUrl || !screenshotPath || !apiKey) {
  console.error("usage: CARELINE_API_KEY=... node floor.mjs CONSOLE_URL SCREENSHOT_PATH");
  process.exit(2);
}

// In the page: the text of the cell `key` (data-key) of the queue named `name`, or whether it
// is `want` when one is given. A function, not a string: the page's Content-Security-Policy
// forbids evaluating strings.
const queueCell = ([name, key, want]) => {
  const row = Array.from(document.querySelectorAll("#queues tbody tr")).find(
    (tr) => tr.cells[0].textContent === name,
  );
  const cell = row && row.querySelector(`[data-key="${key}"]`);
  const text = cell ? cell.textContent : null;
  return want === undefined ? text : text === want;
};

await withBrowser(async (page) => {
  await page.goto(new URL("floor", consoleUrl).href);
  if ((await page.getAttribute("html", "lang")) !== "en") fail("the sign-in page is not lang=en");

  // Keyboard only: the key field, then Enter submits the form.
  await tabTo(page, "the key field", focusedIs("textbox", "Tenant API key"));
  await page.keyboard.type(apiKey);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Queues" }).waitFor();
  if (new URL(page.url()).search !== "") fail(`the key or anything else is in the URL: ${page.url()}`);
  await page.waitForFunction(() => document.getElementById("status").textContent === "Live");
  emit("signed_in");

  await page.waitForFunction(queueCell, ["Member services", "waiting", "2"]);
  emit("waiting_seen");

  // Ana took one: one answered today, ana listed, one still waiting.
  await page.waitForFunction(
    () =>
      document.querySelector('[data-kpi="answered"]').textContent === "1" &&
      document.querySelector('#agents tbody tr[data-id="ana"]') !== null,
  );
  await page.waitForFunction(queueCell, ["Member services", "waiting", "1"]);
  emit("answered_seen", {
    agentState: await page.textContent('#agents tbody tr[data-id="ana"] [data-key="state"]'),
  });

  // A supervisor scored ana's resolved contact (5, 4, 3): today's quality and her row show 4.0.
  await page.waitForFunction(() => {
    const row = document.querySelector('#quality tbody tr[data-id="ana"]');
    return (
      row !== null &&
      row.cells[2].textContent === "4.0" &&
      document.querySelector('[data-kpi="average_quality_score"]').textContent === "4.0"
    );
  });
  emit("quality_seen");

  // What assistive technology relies on.
  const a11y = await page.evaluate(() => ({
    main: document.querySelectorAll("main").length,
    header: document.querySelectorAll("header").length,
    nav: document.querySelectorAll("nav").length,
    colHeaders: document.querySelectorAll("table th[scope=col]").length,
    rowHeaders: document.querySelectorAll("table tbody th[scope=row]").length,
    live: document.querySelectorAll("[aria-live]").length,
    charts: document.querySelectorAll("svg[role=img][aria-labelledby]").length,
  }));
  if (a11y.main !== 1 || a11y.header !== 1 || a11y.nav !== 1) fail(`landmarks: ${JSON.stringify(a11y)}`);
  if (a11y.colHeaders < 14 || a11y.rowHeaders < 2 || a11y.live < 3 || a11y.charts !== 2) {
    fail(`table headers, live regions or charts missing: ${JSON.stringify(a11y)}`);
  }
  await saveScreenshot(page, screenshotPath, true);
  emit("screenshot", { path: screenshotPath });

  // Español with the keyboard: the same session, the page in Spanish.
  await tabTo(page, "the language switch", focusedIs("button", "Español"));
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Colas" }).waitFor();
  if ((await page.getAttribute("html", "lang")) !== "es") fail("the Spanish page is not lang=es");
  await page.waitForFunction(() => document.getElementById("status").textContent === "En directo");
  emit("spanish_seen");
});
