// End-to-end test of the Recordings and Audit views in headless Chromium, run by
// tests/browser.rs against the real binary with a recorded session template: sign in, open the
// recorded session, print a line and exit, then play the recording in the page (asciinema-player,
// under the page's Content-Security-Policy) and see the line in the player, change the speed,
// open the Audit view and find the recording's read and the shell's end, filter by kind, and
// delete the recording. Fails on any console error or page error.
//
// Environment: WSSH_URL, WSSH_USER, WSSH_PASSWORD, WSSH_SESSION (a recorded template),
// WSSH_SCREENSHOTS, WSSH_CHROMIUM.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.WSSH_URL;
const username = process.env.WSSH_USER || 'admin';
const password = process.env.WSSH_PASSWORD;
const session = process.env.WSSH_SESSION || 'sh';
const shots = process.env.WSSH_SCREENSHOTS || 'e2e-screenshots';
const executablePath = process.env.WSSH_CHROMIUM || '/usr/bin/chromium';
if (!base || !password) throw new Error('WSSH_URL and WSSH_PASSWORD are required');
mkdirSync(shots, { recursive: true });

const problems = [];
const step = (text) => console.log(`step: ${text}`);
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.stack || error}`));
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
  const check = () => {
    if (problems.length) throw new Error(problems.join('\n'));
  };
  const xterm = () =>
    page.evaluate(() =>
      Array.from(document.querySelectorAll('#terminal .xterm-rows > div'), (row) => row.textContent.replace(/\u00a0/g, ' ')).join('\n'),
    );
  const player = () => page.evaluate(() => (document.querySelector('#player .ap-term-text') || {}).textContent || '');
  const waitFor = async (read, pattern, what) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const text = await read();
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) {
        await shot('recordings-failure');
        throw new Error(`timed out waiting for ${what}; it shows:\n${text}`);
      }
      await page.waitForTimeout(100);
    }
  };
  const type = async (line) => {
    await page.locator('#terminal .xterm-helper-textarea').focus();
    await page.keyboard.type(line);
    await page.keyboard.press('Enter');
  };

  step('sign in');
  const response = await page.goto(base + '/');
  if (response.status() !== 200) throw new Error(`the page answered ${response.status()}`);
  await page.fill('#signin-username', username);
  await page.fill('#signin-password', password);
  await page.click('#signin-submit');
  await page.locator(`button[data-session="${session}"]`).waitFor();
  check();

  step('a recorded shell prints a line and exits');
  await page.click(`button[data-session="${session}"]`);
  await page.locator('#terminal .xterm-rows').waitFor();
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await type('echo recorded-$((6*7))-line');
  await waitFor(xterm, /recorded-42-line/, 'the echoed line in the terminal');
  await type('exit 5');
  await page.waitForFunction(() => /exited with status 5/.test(document.querySelector('#term-status').textContent));
  await page.click('#term-back');
  check();

  step('the Recordings view lists it');
  await page.click('#tabs button[data-view=recordings]');
  await page.locator('#view-recordings:not([hidden])').waitFor();
  // The recording ends a moment after the shell: reload the view until it shows the exit status.
  const row = page.locator('#recordings-body tr').first();
  const deadline = Date.now() + 20_000;
  for (;;) {
    if ((await page.locator('#recordings-body tr').count()) === 1 && (await row.locator('td').nth(5).textContent()) === '5') break;
    if (Date.now() > deadline) throw new Error(`the recordings list: ${await page.textContent('#recordings-body')}`);
    await page.waitForTimeout(300);
    await page.click('#tabs button[data-view=recordings]');
  }
  const cells = await row.locator('td').allTextContents();
  if (cells[0] !== username || cells[1] !== session) throw new Error(`the recording's row: ${cells.join(' | ')}`);
  check();

  step('it plays in asciinema-player and its text is on screen');
  await row.locator('button[data-play]').click();
  await page.locator('#player-box:not([hidden])').waitFor();
  await page.locator('#player .ap-term-text').waitFor();
  await waitFor(player, /recorded-42-line/, 'the recorded line in the player');
  // The player's own controls are there: play/pause and the seek bar.
  await page.locator('#player .ap-control-bar').waitFor({ state: 'attached' });
  await shot('recordings-01-played');
  check();

  step('a new speed plays it again, still showing the line');
  await page.selectOption('#player-speed', '2');
  await page.locator('#player .ap-term-text').waitFor();
  await waitFor(player, /recorded-42-line/, 'the recorded line after a speed change');
  check();

  step('the Audit view shows the read and the shell, and filters by kind');
  await page.click('#tabs button[data-view=audit]');
  await page.locator('#view-audit:not([hidden])').waitFor();
  await page.locator('#audit-body tr[data-kind="recording.read"]').first().waitFor();
  const read = await page.locator('#audit-body tr[data-kind="recording.read"]').first().locator('td').allTextContents();
  if (!read[3].startsWith(`${username} (`)) throw new Error(`the recording.read event's actor: ${read.join(' | ')}`);
  await page.fill('#audit-filter input[name=kind]', 'shell.ended');
  await page.click('#audit-filter button[type=submit]');
  await page.waitForFunction(() => {
    const kinds = Array.from(document.querySelectorAll('#audit-body tr'), (tr) => tr.dataset.kind);
    return kinds.length > 0 && kinds.every((kind) => kind === 'shell.ended');
  });
  const ended = await page.textContent('#audit-body tr:first-child td.details');
  if (!/exit_status: 5/.test(ended)) throw new Error(`the shell.ended event: ${ended}`);
  await shot('recordings-02-audit');
  check();

  step('the recording is deleted from the list');
  page.once('dialog', (dialog) => dialog.accept());
  await page.click('#tabs button[data-view=recordings]');
  await page.locator('#recordings-body button[data-delete]').first().click();
  await page.locator('#recordings-empty:not([hidden])').waitFor();
  if (!(await page.locator('#player-box').isHidden())) throw new Error('the player still shows a deleted recording');
  check();

  step('a live recorded shell is watched from the Recordings view, read-only');
  await page.click('#tabs button[data-view=sessions]').catch(() => {});
  await page.locator(`button[data-session="${session}"]`).waitFor();
  await page.click(`button[data-session="${session}"]`);
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await type('echo watched-$((6*7))-line');
  await waitFor(xterm, /watched-42-line/, 'the echoed line in the terminal');
  await page.click('#term-back');
  const watchDeadline = Date.now() + 20_000;
  for (;;) {
    await page.click('#tabs button[data-view=recordings]');
    await page.locator('#view-recordings:not([hidden])').waitFor();
    if ((await page.locator('#recordings-body button[data-watch]').count()) === 1) break;
    if (Date.now() > watchDeadline) throw new Error(`no live recording to watch: ${await page.textContent('#recordings-body')}`);
    await page.waitForTimeout(300);
  }
  await page.locator('#recordings-body button[data-watch]').click();
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await waitFor(xterm, /watched-42-line/, 'the live shell\'s screen while watching');
  if (await page.locator('#term-mode').isHidden()) throw new Error('watching is not marked read-only');
  await shot('recordings-03-watching');
  check();
  console.log('e2e: recordings steps passed');
} catch (error) {
  if (page) await page.screenshot({ path: join(shots, 'recordings-failure.png') }).catch(() => {});
  console.error(`e2e failed: ${error.stack || error}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
