// The page at / in a real headless browser (Debian's chromium, driven by playwright-core, which
// downloads no browser): paste a text, read it into a session, ask a question, and wait for the
// answer to stream in. Saves a screenshot; prints {"answer", "reading"} as JSON on stdout.
//   node browser.mjs BASE_URL TEXT_FILE PROMPT SCREENSHOT_PNG
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [baseURL, textFile, prompt, screenshot] = process.argv.slice(2);
// This machine has no network but loopback: Chromium's own background connections stay off.
// Playwright gives it a fresh, empty profile.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(baseURL + "/");
  await page.waitForFunction(() => document.getElementById("model").textContent.startsWith("model "));
  await page.fill("#text", readFileSync(textFile, "utf-8"));
  await page.click("#read");
  await page.waitForFunction(() => document.getElementById("reading").textContent.startsWith("Done:"), null,
                             { timeout: 120000 });
  const reading = await page.textContent("#reading");
  await page.fill("#prompt", prompt);
  await page.fill("#max_tokens", "48");
  await page.fill("#temperature", "0");
  await page.click("#ask");
  await page.waitForFunction(() => document.getElementById("answer").dataset.done === "true" ||
                                   document.getElementById("error").textContent !== "", null, { timeout: 120000 });
  const answer = await page.textContent("#answer");
  const error = await page.textContent("#error");
  await page.screenshot({ path: screenshot, fullPage: true });
  if (error || errors.length) throw new Error("the page reported: " + error + errors.join("; "));
  console.log(JSON.stringify({ answer, reading, session: await page.inputValue("#session") }));
} finally {
  await browser.close();
}
