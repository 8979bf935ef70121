// Browser test of the chat widget: headless Debian Chromium driven by playwright-core.
//
//   node tests/browser/chat.mjs GATEWAY_URL SCREENSHOT_PATH
//
// Opens GATEWAY_URL/demo, and with the keyboard only: Tab to the launcher, open it, choose
// Español, fill the start form, start the chat. Then waits for the agent's answer (the caller runs
// a gRPC test agent that answers CARELINE_EXPECT_AGENT_TEXT), sends one message with Enter in the
// message box and one by Tab to the send button and Enter, reloads the page (the chat resumes,
// each message shown once) and sends one more, saves a screenshot of the conversation, and
// checks that Escape closes the panel and gives focus back to the launcher.
//
// Prints one JSON object per line on stdout ({"event": ...}); the caller reads them. Exits 0 when
// every step passed, 1 with the reason on stderr otherwise (lib.mjs).
import { demoUrl, emit, fail, focusedIs, saveScreenshot, tabTo, withBrowser } from "./lib.mjs";

// What the member types (Spanish: the router must detect it and the widget must be in Spanish).
const FIRST_MESSAGE = "Hola, tengo una pregunta sobre mi factura de este mes.";
const ENTER_MESSAGE = "Gracias, ¿me puede enviar el detalle?";
const BUTTON_MESSAGE = "Perfecto, muchas gracias.";
const RESUMED_MESSAGE = "Sigo aquí después de recargar la página.";

const [gatewayUrl, screenshotPath] = process.argv.slice(2);
const expectedAgentText = process.env.CARELINE_EXPECT_AGENT_TEXT;
if (!gatewayUrl || !screenshotPath || !expectedAgentText) {
  console.error("usage: CARELINE_EXPECT_AGENT_TEXT=... node chat.mjs GATEWAY_URL SCREENSHOT_PATH");
  process.exit(2);
}

// Fails unless each text is in exactly one line of the conversation.
async function shownOnce(page, texts) {
  const lines = await page.locator(".cl-log li").allTextContents();
  for (const text of texts) {
    const count = lines.filter((line) => line.includes(text)).length;
    if (count !== 1) fail(`"${text}" is shown ${count} times in the conversation, expected once`);
  }
}

await withBrowser(async (page) => {
  await page.goto(demoUrl(gatewayUrl));
  emit("page_opened", { url: page.url() });

  // Keyboard only from here on.
  await tabTo(page, "the chat launcher", focusedIs("button", "Chat with us"));
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: "Chat with us" }).waitFor();
  if (!(await page.evaluate(focusedIs("combobox", "Language")))) {
    fail("opening the chat did not move focus to its first field (Language)");
  }
  // Español is the option after English; the form switches language at once.
  await page.keyboard.press("ArrowDown");
  await page.getByRole("dialog", { name: "Chatee con nosotros" }).waitFor();
  emit("language_switched", { lang: await page.locator(".cl-widget").getAttribute("lang") });

  await tabTo(page, "the first name field", focusedIs("textbox", "Nombre (opcional)"));
  await page.keyboard.type("Rosa");
  await tabTo(page, "the first message field", focusedIs("textbox", "¿Cómo podemos ayudarle?"));
  await page.keyboard.type(FIRST_MESSAGE);
  await tabTo(page, "the start button", focusedIs("button", "Iniciar chat"));
  await page.keyboard.press("Enter");
  emit("chat_started");

  const log = page.getByRole("log", { name: "Conversación" });
  await log.getByText(FIRST_MESSAGE).waitFor();
  // The member's first message is acknowledged (stored) when it loses its pending mark.
  await page.locator(".cl-log li.cl-from-member:not(.cl-pending)").first().waitFor();
  emit("first_message_stored");

  await log.getByText(expectedAgentText).waitFor();
  const joined = await page.locator(".cl-log li.cl-from-system").allTextContents();
  emit("agent_answer_seen", { text: expectedAgentText, system_lines: joined });

  // Enter in the message box sends.
  const box = page.getByRole("textbox", { name: "Mensaje" });
  if (!(await page.evaluate(focusedIs("textbox", "Mensaje")))) {
    await tabTo(page, "the message box", focusedIs("textbox", "Mensaje"));
  }
  await page.keyboard.type(ENTER_MESSAGE);
  await page.keyboard.press("Enter");
  await log.getByText(ENTER_MESSAGE).waitFor();
  if ((await box.inputValue()) !== "") fail("Enter did not send the message (the box still holds it)");
  emit("sent_with_enter", { text: ENTER_MESSAGE });

  // Tab reaches the send button, Enter on it sends.
  await page.keyboard.type(BUTTON_MESSAGE);
  await tabTo(page, "the send button", focusedIs("button", "Enviar"));
  await page.keyboard.press("Enter");
  await log.getByText(BUTTON_MESSAGE).waitFor();
  emit("sent_with_button", { text: BUTTON_MESSAGE });

  await page.waitForFunction(() => document.querySelectorAll(".cl-log li.cl-pending").length === 0);
  await shownOnce(page, [FIRST_MESSAGE, ENTER_MESSAGE, BUTTON_MESSAGE, expectedAgentText]);

  // A reload mid-chat resumes it (token in sessionStorage): the transcript comes back, each
  // message once, and the chat goes on.
  await page.reload();
  await tabTo(page, "the chat launcher after the reload", focusedIs("button", "Chatee con nosotros"));
  await page.keyboard.press("Enter");
  await log.getByText(expectedAgentText).waitFor();
  await log.getByText(BUTTON_MESSAGE).waitFor();
  if (!(await page.evaluate(focusedIs("textbox", "Mensaje")))) {
    fail("reopening a resumed chat did not put focus in the message box");
  }
  await page.keyboard.type(RESUMED_MESSAGE);
  await page.keyboard.press("Enter");
  await page.locator(".cl-log li.cl-from-member:not(.cl-pending)", { hasText: RESUMED_MESSAGE }).waitFor();
  await shownOnce(page, [FIRST_MESSAGE, ENTER_MESSAGE, BUTTON_MESSAGE, expectedAgentText, RESUMED_MESSAGE]);
  const joinedLines = await page.locator(".cl-log li.cl-from-system").allTextContents();
  if (joinedLines.length !== 1) fail(`expected one "agent joined" line after the resume, got ${JSON.stringify(joinedLines)}`);
  emit("resumed_after_reload", { text: RESUMED_MESSAGE });

  await saveScreenshot(page, screenshotPath);
  emit("screenshot", { path: screenshotPath });

  // Escape closes the panel and focus goes back to the launcher.
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  if (!(await page.evaluate(focusedIs("button", "Chatee con nosotros")))) {
    fail("Escape closed the chat but focus did not return to the launcher");
  }
  emit("escape_closed");
});
