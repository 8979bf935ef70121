// Browser test of the survey page: headless Debian Chromium driven by playwright-core.
//
//   node tests/browser/survey.mjs SURVEY_URL SCREENSHOT_PATH
//
// Opens SURVEY_URL (a Spanish survey link) and answers with the keyboard only: Tab into each
// radio group and move with the arrow keys (recommend 9, hire-agent 10, ease 4), Tab to the
// comment and type it, Tab to the button and press Enter. Checks the page is in Spanish, that
// every focused control shows a visible focus outline, and that the thank-you page follows.
//
// Prints one JSON object per line on stdout ({"event": ...}); exits 0 when every step passed,
// 1 with the reason on stderr otherwise (lib.mjs).
import { emit, fail, saveScreenshot, tabTo, withBrowser } from "./lib.mjs";

// What the member types in the comment box.
const COMMENT = "La agente fue muy amable y resolvió todo.";

const [surveyUrl, screenshotPath] = process.argv.slice(2);
if (!surveyUrl || !screenshotPath) {
  console.error("usage: node survey.mjs SURVEY_URL SCREENSHOT_PATH");
  process.exit(2);
}

// A page-side check that the focused element is a control named `name` (value `value` if given).
const focusedControl = (name, value) => `(() => {
  const el = document.activeElement;
  return !!el && el.name === ${JSON.stringify(name)}
    && (${JSON.stringify(value ?? null)} === null || el.value === ${JSON.stringify(value ?? "")});
})()`;

// Fails unless the focused element draws a focus outline.
async function focusVisible(page, what) {
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  if (!outline || outline === "none") fail(`${what} shows no focus outline`);
}

// Moves within the focused radio group with ArrowRight until `value` is checked.
async function choose(page, name, value) {
  for (let i = 0; i < 11; i++) {
    if (await page.evaluate(`document.querySelector('input[name=${name}]:checked')?.value === ${JSON.stringify(String(value))}`)) {
      return;
    }
    await page.keyboard.press("ArrowRight");
  }
  fail(`could not choose ${value} in ${name} with the arrow keys`);
}

await withBrowser(async (page) => {
  await page.goto(surveyUrl);
  const lang = await page.locator("html").getAttribute("lang");
  if (lang !== "es") fail(`the page is in ${lang}, expected es`);
  await page.getByRole("heading", { name: "¿Cómo lo hicimos?" }).waitFor();
  emit("page_opened", { lang });

  // Keyboard only from here on.
  await tabTo(page, "the recommend scale", focusedControl("recommend"));
  await focusVisible(page, "the recommend scale");
  await choose(page, "recommend", 9);
  await page.keyboard.press("Tab");
  if (!(await page.evaluate(focusedControl("hire_agent")))) fail("Tab did not move to the hire-agent scale");
  await choose(page, "hire_agent", 10);
  await page.keyboard.press("Tab");
  if (!(await page.evaluate(focusedControl("ease")))) fail("Tab did not move to the ease scale");
  await choose(page, "ease", 4);
  await tabTo(page, "the comment box", focusedControl("comment"));
  await focusVisible(page, "the comment box");
  await page.keyboard.type(COMMENT);
  await page.keyboard.press("Tab");
  const onButton = await page.evaluate(() => document.activeElement?.tagName === "BUTTON"
    && document.activeElement.textContent.trim() === "Enviar mis respuestas");
  if (!onButton) fail("Tab from the comment did not reach the send button");
  await focusVisible(page, "the send button");
  emit("answered", { recommend: 9, hire_agent: 10, ease: 4 });
  await page.keyboard.press("Enter");

  await page.getByText("¡Gracias! Sus respuestas quedaron registradas.").waitFor();
  await saveScreenshot(page, screenshotPath, true);
  emit("thanked", { screenshot: screenshotPath });
});
