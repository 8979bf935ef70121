// Browser test of the widget's call-back request when the tenant is closed.
//
//   node tests/browser/callback.mjs GATEWAY_URL SCREENSHOT_PATH
//
// Opens GATEWAY_URL/demo and, with the keyboard only, starts a chat in English. The tenant is
// closed and has a call-back campaign: the after-hours box offers "Request a call-back". Tab +
// Enter on it opens the call-back form with focus in the phone field; a number too short is
// refused beside the field (focus goes there), then the member's number is sent and the
// confirmation is shown. Saves a screenshot of the form.
//
// Prints one JSON object per line on stdout ({"event": ...}); exits 0 when every step passed,
// 1 with the reason on stderr otherwise (lib.mjs).
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { demoUrl, emit, fail, focusedIs, tabTo, withBrowser } from "./lib.mjs";

const FIRST_MESSAGE = "Hello, can someone call me about my bill?";
const PHONE = process.env.CARELINE_CALLBACK_PHONE || "+1 555 010 1234";

const [gatewayUrl, screenshotPath] = process.argv.slice(2);
if (!gatewayUrl || !screenshotPath) {
  console.error("usage: node callback.mjs GATEWAY_URL SCREENSHOT_PATH");
  process.exit(2);
}

await withBrowser(async (page) => {
  await page.goto(demoUrl(gatewayUrl));
  await tabTo(page, "the chat launcher", focusedIs("button", "Chat with us"));
  await page.keyboard.press("Enter");
  await tabTo(page, "the first message field", focusedIs("textbox", "How can we help?"));
  await page.keyboard.type(FIRST_MESSAGE);
  await tabTo(page, "the start button", focusedIs("button", "Start chat"));
  await page.keyboard.press("Enter");

  const closed = page.locator(".cl-after-hours");
  await closed.getByRole("heading", { name: "We are closed right now" }).waitFor();
  await closed.getByRole("button", { name: "Request a call-back" }).waitFor();
  emit("callback_offered", {});

  await tabTo(page, "the call-back button", focusedIs("button", "Request a call-back"));
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: "Request a call-back" }).waitFor();
  if (!(await page.evaluate(focusedIs("textbox", "Phone number")))) {
    fail("the call-back form did not put focus in its phone field");
  }
  await page.keyboard.type("12");
  await tabTo(page, "the call-me-back button", focusedIs("button", "Call me back"));
  await page.keyboard.press("Enter");
  // Refused in the page: the error is beside the field, linked to it, and focus is there.
  const invalid = page.locator('input[type="tel"][aria-invalid="true"]');
  await invalid.waitFor();
  if (!(await page.evaluate(focusedIs("textbox", "Phone number")))) {
    fail("after a bad number, focus did not go to the phone field");
  }
  const described = await invalid.getAttribute("aria-describedby");
  const error = await page.locator(`[id="${described}"]`).textContent();
  if (!error.includes("+1 555 010 1234")) fail(`unexpected phone error: ${error}`);
  emit("bad_phone_refused", { error });
  mkdirSync(dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: false });
  emit("screenshot", { path: screenshotPath });

  await page.keyboard.press("Control+A");
  await page.keyboard.type(PHONE);
  await tabTo(page, "the call-me-back button", focusedIs("button", "Call me back"));
  await page.keyboard.press("Enter");
  const done = page.getByRole("status").filter({ hasText: "We will call you back when we open." });
  await done.waitFor();
  emit("callback_sent", {});
});
