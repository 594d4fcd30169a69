/**
 * The browser console end to end, in a real browser: Playwright (playwright-core) driving Debian's
 * Chromium, headless, against the real embedded server. Without Chromium it skips locally with a reason
 * starting "service unavailable"; under REQUIRE_SERVICES=1 (CI, which installs it) it fails instead.
 * UPDATE_SCREENSHOT=1 also writes the screenshot the README shows (docs/console.png).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { api, startServer, type TestServer } from './helpers/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
const skip =
  present || process.env.REQUIRE_SERVICES === '1'
    ? false
    : `service unavailable: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
const SCREENSHOT = new URL('../docs/console.png', import.meta.url).pathname;
const TIMEOUT = 10_000;

describe('browser console (Chromium)', { skip }, () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  const scratch = mkdtempSync(join(tmpdir(), 'chat-console-test-'));

  before(async () => {
    assert.ok(present, `Chromium is required here (REQUIRE_SERVICES=1) and missing at ${CHROMIUM}`);
    server = await startServer({ env: { MESSAGE_MAX_BYTES: '1024' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1180, height: 820 } });
    context.setDefaultTimeout(TIMEOUT);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const alert = (page: Page) => page.getByRole('alert');
  const messages = (page: Page) => page.getByRole('log', { name: 'Messages' }).getByRole('listitem');

  it('creates an application and a chat, sends, sees it arrive live in a second tab, and finds it', async () => {
    const one = await context.newPage();
    await one.goto(server.url);

    // An unknown token is a clear error, not a blank page.
    await one.getByLabel('Open by token').fill('no-such-token');
    await one.getByRole('button', { name: 'Open' }).click();
    await alert(one).getByText('No application has this token').waitFor();

    await one.getByLabel('New application name').fill('Console demo');
    await one.getByLabel('New application name').press('Enter');
    await one.getByText('Console demo').waitFor();
    assert.equal(await alert(one).isVisible(), false, 'the earlier error is cleared');
    await one.getByRole('button', { name: 'New chat' }).click();
    await one.getByRole('heading', { name: 'Chat 1' }).waitFor();
    await one.getByRole('status').filter({ hasText: 'Live' }).waitFor();

    // Keyboard only: type, Enter sends.
    await one.getByLabel('Message', { exact: true }).fill('Hello from tab one');
    await one.getByLabel('Message', { exact: true }).press('Enter');
    await messages(one).filter({ hasText: 'Hello from tab one' }).waitFor();

    // A second tab on the same chat, by its address.
    const two = await context.newPage();
    await two.goto(one.url());
    await two.getByRole('heading', { name: 'Chat 1' }).waitFor();
    await messages(two).filter({ hasText: 'Hello from tab one' }).waitFor();
    await two.getByRole('status').filter({ hasText: 'Live' }).waitFor();

    // Sent in tab one, it appears in tab two without a reload: the stream delivered it.
    await one.getByLabel('Message', { exact: true }).fill('The live Needle arrives');
    await one.getByRole('button', { name: 'Send' }).click();
    await messages(two).filter({ hasText: 'The live Needle arrives' }).waitFor();
    await two.getByText('2 messages').first().waitFor();

    // An edit in tab one reaches tab two too.
    await one.getByRole('button', { name: 'Edit message 1' }).click();
    await one.getByLabel('New text of message 1').fill('Hello again, edited');
    await one.getByRole('button', { name: 'Save' }).click();
    await messages(two).filter({ hasText: 'Hello again, edited' }).waitFor();

    // Search finds it in tab two, with the match highlighted.
    await two.getByLabel('Search in this chat').fill('needle');
    await two.getByLabel('Search in this chat').press('Enter');
    await two.getByText('1 match for “needle”').waitFor();
    const marks = await two.locator('#search-list mark').allTextContents();
    assert.deepEqual(marks, ['Needle']);

    // A validation error is shown as the server states it.
    await one.getByLabel('Message', { exact: true }).fill('x'.repeat(2000));
    await one.getByLabel('Message', { exact: true }).press('Enter');
    await alert(one).getByText('the maximum is 1024').waitFor();

    const shot = join(scratch, 'console.png');
    await two.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 10_000);
    if (process.env.UPDATE_SCREENSHOT === '1') await two.screenshot({ path: SCREENSHOT });
    await one.close();
    await two.close();
  });

  it('scrolls backwards through a long chat, page by page', async () => {
    const token = (await api(server.url, 'POST', '/applications', { name: 'long' })).body.token as string;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    for (let i = 1; i <= 120; i++) {
      await api(server.url, 'POST', `/applications/${token}/chats/1/messages`, { body: `line ${i}` });
    }
    const page = await context.newPage();
    await page.goto(`${server.url}/#/app/${token}/chat/1`);
    await messages(page).filter({ hasText: 'line 120' }).waitFor();
    assert.equal(await messages(page).count(), 50, 'the newest page first');
    for (let i = 0; i < 5 && (await messages(page).count()) < 120; i++) {
      const shown = await messages(page).count();
      await page.locator('#scroller').evaluate((el) => {
        el.scrollTop = 0;
      });
      // Reaching the top loaded the page before: there is an item beyond those shown before.
      await messages(page).nth(shown).waitFor();
    }
    assert.equal(await messages(page).count(), 120);
    assert.equal(await messages(page).first().locator('.body').textContent(), 'line 1');
    await page.close();
  });

  it('fits a narrow screen and labels every control', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 740 } });
    await page.goto(server.url);
    // Page functions as strings: this file is type-checked without the DOM library.
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    assert.ok(overflow <= 0, `no horizontal scrolling (${overflow}px too wide)`);
    const unlabelled = await page.evaluate<string[]>(
      "[...document.querySelectorAll('input, textarea')].filter((el) => el.labels.length === 0).map((el) => el.id)",
    );
    assert.deepEqual(unlabelled, []);
    await page.close();
  });

  it('says so when the server is down', async () => {
    const token = (await api(server.url, 'POST', '/applications', { name: 'down' })).body.token as string;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    const page = await context.newPage();
    await page.goto(`${server.url}/#/app/${token}/chat/1`);
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
    await server.stop();
    await page
      .getByRole('status')
      .filter({ hasText: /reconnecting|Offline/i })
      .waitFor();
    await page.getByLabel('Message', { exact: true }).fill('into the void');
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await alert(page).getByText('The server cannot be reached').waitFor();
    await page.close();
  });
});
