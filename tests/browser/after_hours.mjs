// Browser test of the widget when the tenant is closed, and of its contact form.
//
//   node tests/browser/after_hours.mjs GATEWAY_URL SCREENSHOT_PATH
//
// Opens GATEWAY_URL/demo and, with the keyboard only, starts a chat in English. The tenant is
// closed: the widget must show the after-hours message with the contact email and the member
// portal, and a "Contact us" button. Tab + Enter on it opens the contact form; the member fills
// it (an invalid address first: the error is announced beside the field and focus goes there),
// sends it, and sees the confirmation. Saves a screenshot of the after-hours panel.
//
// Prints one JSON object per line on stdout ({"event": ...}); exits 0 when every step passed,
// 1 with the reason on stderr otherwise (lib.mjs).
import { emit, fail, focusedIs, refusedFieldError, saveScreenshot, startChatWhileClosed, tabTo, withBrowser } from "./lib.mjs";

const FIRST_MESSAGE = "Hello, I need a new member ID card.";
const CONTACT_MESSAGE = "Please mail me a new member ID card; mine was lost.";
const REPLY_ADDRESS = process.env.CARELINE_REPLY_ADDRESS || "pat@member.example";

const [gatewayUrl, screenshotPath] = process.argv.slice(2);
if (!gatewayUrl || !screenshotPath) {
  console.error("usage: node after_hours.mjs GATEWAY_URL SCREENSHOT_PATH");
  process.exit(2);
}

await withBrowser(async (page) => {
  const closed = await startChatWhileClosed(page, gatewayUrl, FIRST_MESSAGE);
  const email = await closed.locator('a[href^="mailto:"]').textContent();
  const portal = await closed.getByRole("link", { name: "Use the member portal (open 24 hours)" }).getAttribute("href");
  emit("after_hours_shown", { email, portal });
  await saveScreenshot(page, screenshotPath);
  emit("screenshot", { path: screenshotPath });

  await tabTo(page, "the Contact us button", focusedIs("button", "Contact us"));
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: "Contact us" }).waitFor();
  if (!(await page.evaluate(focusedIs("textbox", "Your email address")))) {
    fail("the contact form did not put focus in its email field");
  }
  await page.keyboard.type("not-an-address");
  await tabTo(page, "the contact message field", focusedIs("textbox", "Message"));
  await page.keyboard.type(CONTACT_MESSAGE);
  await tabTo(page, "the send button", focusedIs("button", "Send message"));
  await page.keyboard.press("Enter");
  // Refused in the page: the error is beside the field, linked to it, and focus is there.
  const error = await refusedFieldError(page, 'input[type="email"]', "Your email address", "email");
  if (!error.includes("name@example.com")) fail(`unexpected email error: ${error}`);
  emit("bad_address_refused", { error });

  await page.keyboard.press("Control+A");
  await page.keyboard.type(REPLY_ADDRESS);
  await tabTo(page, "the send button", focusedIs("button", "Send message"));
  await page.keyboard.press("Enter");
  const done = page.getByRole("status").filter({ hasText: "We received your message and will answer by email." });
  await done.waitFor();
  emit("contact_sent", { address: REPLY_ADDRESS });
});
