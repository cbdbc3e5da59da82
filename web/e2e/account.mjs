// End-to-end test of the account view in headless Chromium, run by tests/browser.rs against
// the real binary served under a base path: sign in at WSSH_URL (the base path's page), change
// the password, keep a terminal setting across a reload (and see the terminal use it), turn
// two-factor authentication on with a code computed here from the secret the page shows, then
// sign in again with the new password and a code, make two tokens (one expiring in 7 days, one
// never) whose secrets are shown once, revoke one, and turn two-factor authentication off with
// a code. Prints both token secrets for tests/browser.rs. Fails on any console or page error.
//
// Environment: WSSH_URL (ending in the base path and a slash), WSSH_USER, WSSH_PASSWORD,
// WSSH_NEW_PASSWORD, WSSH_SESSION, WSSH_SCREENSHOTS, WSSH_CHROMIUM.
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.WSSH_URL;
const username = process.env.WSSH_USER || 'admin';
const password = process.env.WSSH_PASSWORD;
const newPassword = process.env.WSSH_NEW_PASSWORD;
const session = process.env.WSSH_SESSION || 'sh';
const shots = process.env.WSSH_SCREENSHOTS || 'e2e-screenshots';
const executablePath = process.env.WSSH_CHROMIUM || '/usr/bin/chromium';
if (!base || !password || !newPassword) throw new Error('WSSH_URL, WSSH_PASSWORD and WSSH_NEW_PASSWORD are required');
mkdirSync(shots, { recursive: true });

/** RFC 4648 base32 (no padding) to bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${char}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP: SHA-1, 30 s steps, 6 digits. */
function totp(secret, at = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, '0');
}

const problems = [];
const step = (text) => console.log(`step: ${text}`);
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.stack || error}`));
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
  const check = () => {
    if (problems.length) throw new Error(problems.join('\n'));
  };
  const signIn = async (secret, otp) => {
    const code = otp ? await otp() : '';
    await page.locator('#signin-username').waitFor();
    await page.fill('#signin-username', username);
    await page.fill('#signin-password', secret);
    await page.click('#signin-submit');
    if (otp) {
      await page.locator('#otp-label:not([hidden])').waitFor();
      await page.fill('#signin-otp', code);
      await page.click('#signin-submit');
    }
    await page.locator(`button[data-session="${session}"]`).waitFor();
  };

  step('the page under the base path signs in');
  const response = await page.goto(base);
  if (response.status() !== 200) throw new Error(`the page answered ${response.status()}`);
  await signIn(password);
  check();

  step('the account view changes the password');
  await page.click('#tabs button[data-view=account]');
  await page.locator('#view-account:not([hidden])').waitFor();
  await page.fill('#password-change-form input[name=password]', newPassword);
  await page.fill('#password-change-form input[name=again]', newPassword);
  await page.click('#password-change-form button[type=submit]');
  await page.locator('#password-result:not([hidden])').waitFor();
  const changed = await page.textContent('#password-result');
  if (!/Password changed/.test(changed)) throw new Error(`password change: ${changed}`);
  await shot('account-01-password');
  check();

  step('a terminal setting survives a reload');
  await page.fill('#settings-form input[name=fontSize]', '19');
  await page.selectOption('#settings-form select[name=theme]', 'light');
  await page.click('#settings-form button[type=submit]');
  await page.locator('#settings-result:not([hidden])').waitFor();
  await page.reload();
  await page.locator(`button[data-session="${session}"]`).waitFor();
  await page.click('#tabs button[data-view=account]');
  await page.locator('#view-account:not([hidden])').waitFor();
  const kept = await page.inputValue('#settings-form input[name=fontSize]');
  const theme = await page.inputValue('#settings-form select[name=theme]');
  if (kept !== '19' || theme !== 'light') throw new Error(`settings after reload: font ${kept}, theme ${theme}`);
  await page.click('#tabs button[data-view=sessions]');
  await page.click(`button[data-session="${session}"]`);
  await page.locator('#terminal .xterm-rows').waitFor();
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  const fontSize = await page.evaluate(() => getComputedStyle(document.querySelector('#terminal .xterm-rows')).fontSize);
  if (fontSize !== '19px') throw new Error(`the terminal's font size is ${fontSize}, not the saved 19px`);
  await shot('account-02-terminal-19px');
  await page.click('#term-back');
  check();

  step('two-factor authentication turned on with a code from the shown secret');
  await page.click('#tabs button[data-view=account]');
  await page.click('#totp-start');
  await page.locator('#totp-enrol:not([hidden])').waitFor();
  const secret = (await page.textContent('#totp-secret')).trim();
  const qr = await page.getAttribute('#totp-qr', 'src');
  if (!/^[A-Z2-7]{16,}=*$/.test(secret)) throw new Error(`not a base32 secret: ${secret}`);
  if (!qr || !qr.startsWith('data:image/png;base64,')) throw new Error('no QR code shown');
  await shot('account-03-qr');
  const enrolCode = totp(secret);
  await page.fill('#totp-enrol input[name=code]', enrolCode);
  await page.click('#totp-enrol button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#totp-state').textContent === 'on');
  check();

  step('signing in again takes the new password and a code');
  await page.click('#signout');
  await page.locator('#signin-username').waitFor();
  // The old password is refused now; the 401 shows as a failed load in the console.
  await page.fill('#signin-username', username);
  await page.fill('#signin-password', password);
  const refused = page.waitForResponse((r) => r.url().endsWith('/auth/login'));
  await page.click('#signin-submit');
  if ((await refused).status() !== 401) throw new Error('the old password still works');
  problems.splice(0, problems.length, ...problems.filter((p) => !/status of 401/.test(p)));
  // A code is accepted once: wait for the next one after the enrolment's.
  await signIn(newPassword, async () => {
    while (totp(secret) === enrolCode) await page.waitForTimeout(500);
    return totp(secret);
  });
  // The first try without a code is answered 401 ("code required"), as designed.
  problems.splice(0, problems.length, ...problems.filter((p) => !/status of 401/.test(p)));
  await shot('account-04-signed-in-with-2fa');
  check();

  step('an own token with an expiry: made, its secret shown once, listed, revoked');
  await page.click('#tabs button[data-view=account]');
  await page.locator('#view-account:not([hidden])').waitFor();
  const makeToken = async (description, days) => {
    const before = await page.inputValue('#own-token-secret');
    await page.fill('#own-token-form input[name=description]', description);
    await page.selectOption('#own-token-form select[name=days]', days);
    await page.click('#own-token-form button[type=submit]');
    await page.locator('#own-token-secret-box:not([hidden])').waitFor();
    // The box may still show the previous token's secret until this one's reply arrives.
    await page.waitForFunction(
      (previous) => document.querySelector('#own-token-secret').value !== previous,
      before,
    );
    const secret = await page.inputValue('#own-token-secret');
    if (secret.length < 20) throw new Error(`no token secret shown: ${secret}`);
    const row = page.locator('#own-token-table tbody tr', { hasText: description });
    await row.waitFor();
    return { secret, row };
  };
  const keptToken = await makeToken('e2e kept token', '7');
  const keptCells = await keptToken.row.locator('td').allTextContents();
  if (keptCells[3] === 'never') throw new Error(`the 7-day token is listed without an expiry: ${keptCells}`);
  const revoked = await makeToken('e2e revoked token', '0');
  const revokedCells = await revoked.row.locator('td').allTextContents();
  if (revokedCells[3] !== 'never') throw new Error(`the token without expiry is listed as ${revokedCells[3]}`);
  await shot('account-05-token-made');
  // Shown once: the account view, opened again, no longer shows it.
  await page.click('#tabs button[data-view=sessions]');
  await page.click('#tabs button[data-view=account]');
  await page.locator('#own-token-secret-box[hidden]').waitFor({ state: 'attached' });
  if (await page.inputValue('#own-token-secret')) throw new Error('the token secret is shown again');
  await revoked.row.locator('button', { hasText: 'Revoke' }).click();
  await revoked.row.waitFor({ state: 'detached' });
  await page.locator('#own-token-table tbody tr', { hasText: 'e2e kept token' }).waitFor();
  console.log(`kept-token: ${keptToken.secret}`);
  console.log(`revoked-token: ${revoked.secret}`);
  check();

  step('two-factor authentication turned off with a current code');
  // The sign-in used the current step; the next one is accepted (one step of skew).
  await page.fill('#totp-off input[name=code]', totp(secret, Date.now() + 30_000));
  await page.click('#totp-off button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#totp-state').textContent === 'off');
  await shot('account-06-2fa-off');
  check();
  console.log('e2e: account steps passed');
} finally {
  await browser.close();
}
