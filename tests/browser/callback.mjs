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
import { emit, fail, focusedIs, refusedFieldError, saveScreenshot, startChatWhileClosed, tabTo, withBrowser } from "./lib.mjs";

const FIRST_MESSAGE = "Hello, can someone call me about my bill?";
const PHONE = process.env.CARELINE_CALLBACK_PHONE || "+1 555 010 1234";

const [gatewayUrl, screenshotPath] = process.argv.slice(2);
if (!gatewayUrl || !screenshotPath) {
  console.error("usage: node callback.mjs GATEWAY_URL SCREENSHOT_PATH");
  process.exit(2);
}

await withBrowser(async (page) => {
  const closed = await startChatWhileClosed(page, gatewayUrl, FIRST_MESSAGE);
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
  const error = await refusedFieldError(page, 'input[type="tel"]', "Phone number", "phone");
  if (!error.includes("+1 555 010 1234")) fail(`unexpected phone error: ${error}`);
  emit("bad_phone_refused", { error });
  await saveScreenshot(page, screenshotPath);
  emit("screenshot", { path: screenshotPath });

  await page.keyboard.press("Control+A");
  await page.keyboard.type(PHONE);
  await tabTo(page, "the call-me-back button", focusedIs("button", "Call me back"));
  await page.keyboard.press("Enter");
  const done = page.getByRole("status").filter({ hasText: "We will call you back when we open." });
  await done.waitFor();
  emit("callback_sent", {});
});
