// End-to-end test of the page in headless Chromium, run by tests/browser.rs against the real
// binary: sign in, open a shell, type, read the output back from the terminal, resize the
// window and see `stty size` follow, reload (the login survives through the refresh cookie),
// sign out and find the old access token refused. Fails on any console error or page error.
//
// Environment: WSSH_URL, WSSH_USER, WSSH_PASSWORD, WSSH_SESSION (default bash),
// WSSH_ACCESS_TOKEN (optional: also sign in with it), WSSH_SCREENSHOTS (a folder),
// WSSH_CHROMIUM (default /usr/bin/chromium), WSSH_DROP (set: when the script prints
// `e2e: drop the connection now`, the caller restarts the server on the same address and then
// writes a line to the script's standard input).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const base = process.env.WSSH_URL;
const username = process.env.WSSH_USER || 'admin';
const password = process.env.WSSH_PASSWORD;
const session = process.env.WSSH_SESSION || 'bash';
const accessToken = process.env.WSSH_ACCESS_TOKEN || '';
const shots = process.env.WSSH_SCREENSHOTS || 'e2e-screenshots';
const executablePath = process.env.WSSH_CHROMIUM || '/usr/bin/chromium';
if (!base || !password) throw new Error('WSSH_URL and WSSH_PASSWORD are required');
mkdirSync(shots, { recursive: true });

const problems = [];
const step = (text) => console.log(`step: ${text}`);

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()} (${JSON.stringify(message.location())})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.stack || error}`));
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
  const check = () => {
    if (problems.length) throw new Error(problems.join('\n'));
  };

  /** The terminal's visible text, one line per row. */
  const screen = () =>
    page.evaluate(() =>
      Array.from(document.querySelectorAll('#terminal .xterm-rows > div'), (row) => row.textContent.replace(/\u00a0/g, ' ')).join('\n'),
    );
  const waitForScreen = async (pattern, what) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const text = await screen();
      const found = text.match(pattern);
      if (found) return found;
      if (Date.now() > deadline) {
        await shot('failure');
        throw new Error(`timed out waiting for ${what}; the terminal shows:\n${text}`);
      }
      await page.waitForTimeout(100);
    }
  };
  const type = async (line) => {
    await page.locator('#terminal .xterm-helper-textarea').focus();
    await page.keyboard.type(line);
    await page.keyboard.press('Enter');
  };

  step('the page loads and asks for a sign-in');
  const response = await page.goto(base + '/');
  const policy = response.headers()['content-security-policy'] || '';
  if (!policy.includes("script-src 'self'") || policy.includes('unsafe-inline;') || policy.includes("script-src 'self' 'unsafe")) {
    throw new Error(`unexpected Content-Security-Policy: ${policy}`);
  }
  await page.locator('#signin-username').waitFor();
  await shot('01-signin');

  step('a wrong password is refused with a message');
  await page.fill('#signin-username', username);
  await page.fill('#signin-password', 'not-the-password');
  // The 401 of a failed sign-in is expected; Chromium reports it as a failed resource load.
  const refused = page.waitForResponse((r) => r.url().endsWith('/auth/login'));
  await page.click('#signin-submit');
  if ((await refused).status() !== 401) throw new Error('a wrong password was not refused');
  await page.locator('#notice:not([hidden])').waitFor();
  problems.splice(0, problems.length, ...problems.filter((p) => !(/status of 401/.test(p) && p.includes('/auth/login'))));

  step('sign in with the password');
  await page.fill('#signin-password', password);
  const loginResponse = page.waitForResponse((r) => r.url().endsWith('/auth/login'));
  await page.click('#signin-submit');
  const login = await loginResponse;
  if (login.status() !== 200) throw new Error(`sign-in answered ${login.status()}`);
  const oldJwt = (login.headers()['authorization'] || '').replace(/^Bearer /, '');
  if (oldJwt.split('.').length !== 3) throw new Error('no access JWT in the sign-in reply');
  await page.locator(`button[data-session="${session}"]`).waitFor();
  await shot('02-sessions');
  check();

  step('a reload keeps the login (refresh through the HttpOnly cookie)');
  const refreshed = page.waitForResponse((r) => r.url().endsWith('/auth/session'));
  await page.reload();
  if ((await refreshed).status() !== 204) throw new Error('the reload did not refresh the login');
  await page.locator(`button[data-session="${session}"]`).waitFor();
  const cookieVisible = await page.evaluate(() => document.cookie.includes('token='));
  if (cookieVisible) throw new Error('the refresh cookie is readable from JavaScript');
  check();

  step(`open the session ${session}`);
  await page.click(`button[data-session="${session}"]`);
  await page.locator('#terminal .xterm-rows').waitFor();
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await type('echo hello-$((6*7))');
  await waitForScreen(/^hello-42\s*$/m, 'hello-42');
  // 24-bit colour: xterm.js styles such cells with style attributes, which the policy allows.
  await type("printf '\\033[38;2;255;120;0m%s\\033[0m\\n' true-colour");
  await waitForScreen(/^true-colour\s*$/m, 'true-colour');
  await shot('03-hello');
  check();

  step('stty size follows the window');
  const sizeOf = async (marker) => {
    await type(`echo ${marker}=$(stty size)`);
    const [, rows, cols] = await waitForScreen(new RegExp(`^${marker}=(\\d+) (\\d+)\\s*$`, 'm'), `${marker}'s stty size`);
    return { rows: Number(rows), cols: Number(cols) };
  };
  const shown = async () => {
    const [cols, rows] = (await page.textContent('#term-size')).split('×').map(Number);
    return { rows, cols };
  };
  const before = await sizeOf('SIZE1');
  const shownBefore = await shown();
  if (before.rows !== shownBefore.rows || before.cols !== shownBefore.cols) {
    throw new Error(`stty size ${JSON.stringify(before)} differs from the terminal's ${JSON.stringify(shownBefore)}`);
  }
  await page.setViewportSize({ width: 820, height: 460 });
  await page.waitForFunction(
    ([cols, rows]) => document.querySelector('#term-size').textContent !== `${cols}×${rows}`,
    [shownBefore.cols, shownBefore.rows],
  );
  await type('clear');
  const after = await sizeOf('SIZE2');
  const shownAfter = await shown();
  if (after.rows !== shownAfter.rows || after.cols !== shownAfter.cols) {
    throw new Error(`after the resize stty size ${JSON.stringify(after)} differs from the terminal's ${JSON.stringify(shownAfter)}`);
  }
  if (!(after.cols < before.cols && after.rows < before.rows)) {
    throw new Error(`the PTY did not shrink with the window: ${JSON.stringify(before)} then ${JSON.stringify(after)}`);
  }
  console.log(`stty size: ${before.rows}x${before.cols} then ${after.rows}x${after.cols}`);
  await shot('04-resized');
  check();

  step('the shell exits: the page says so and offers to reconnect');
  await type('exit 3');
  await page.waitForFunction(() => /exited with status 3/.test(document.querySelector('#term-status').textContent));
  await page.locator('#term-reconnect:not([hidden])').waitFor();
  await shot('05-exited');
  await page.click('#term-reconnect');
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await type('echo again-$((2+3))');
  await waitForScreen(/^again-5\s*$/m, 'again-5');
  check();

  step('a reload finds the same live shell, with its earlier output on the screen');
  await type('echo PID=$$');
  const [, pid] = await waitForScreen(/^PID=(\d+)\s*$/m, 'the shell\'s pid');
  if (!/[?&]shell=[\w-]{22}/.test(page.url())) throw new Error(`the shell is not in the page's URL: ${page.url()}`);
  const shellUrl = page.url();
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await page.waitForFunction((url) => location.href === url, shellUrl);
  await waitForScreen(new RegExp(`^PID=${pid}\\s*$`, 'm'), 'the earlier output after the reload');
  await type('echo PID2=$$');
  await waitForScreen(new RegExp(`^PID2=${pid}\\s*$`, 'm'), 'the same shell after the reload');
  await shot('05c-reloaded');
  check();

  step('the window title follows the program (OSC 0)');
  await type("printf '\\033]0;%s\\007' e2e-title");
  await page.waitForFunction(() => document.title === 'e2e-title');
  check();

  step('a share link lets a second browser watch, but not type');
  await page.click('#term-share');
  await page.locator('#ask[open]').waitFor();
  await page.fill('#ask-fields input[name=minutes]', '10');
  await page.click('#ask-ok');
  await page.locator('#share-link:not([hidden])').waitFor();
  const link = await page.inputValue('#share-link');
  if (!/#share=wsshs_[0-9a-f]{64}$/.test(link)) throw new Error(`unexpected share link ${link}`);
  const guestContext = await browser.newContext({ viewport: { width: 1000, height: 600 } });
  const guest = await guestContext.newPage();
  guest.on('pageerror', (error) => problems.push(`guest page error: ${error.stack || error}`));
  await guest.goto(link);
  await guest.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await guest.locator('#term-mode:not([hidden])').waitFor();
  const guestScreen = () =>
    guest.evaluate(() =>
      Array.from(document.querySelectorAll('#terminal .xterm-rows > div'), (row) => row.textContent.replace(/\u00a0/g, ' ')).join('\n'),
    );
  const guestWaits = async (pattern, what) => {
    const deadline = Date.now() + 15_000;
    while (!pattern.test(await guestScreen())) {
      if (Date.now() > deadline) throw new Error(`the guest never saw ${what}:\n${await guestScreen()}`);
      await guest.waitForTimeout(100);
    }
  };
  await guestWaits(new RegExp(`^PID2=${pid}\\s*$`, 'm'), 'the earlier output');
  await guest.locator('#terminal .xterm-helper-textarea').focus();
  await guest.keyboard.type('echo intruder-$((1+1))');
  await guest.keyboard.press('Enter');
  await page.waitForTimeout(500);
  await type('echo owner-$((2+2))');
  await waitForScreen(/^owner-4\s*$/m, 'owner-4');
  await guestWaits(/^owner-4\s*$/m, 'the owner\'s output');
  await guest.screenshot({ path: join(shots, '05d-guest.png') });
  if (/intruder/.test(await screen()) || /intruder/.test(await guestScreen())) {
    throw new Error('an observer\'s typing reached the shell');
  }
  step('the guest reloads: the share link still opens the shell, read-only');
  await guest.reload();
  await guest.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await guest.locator('#term-mode:not([hidden])').waitFor();
  await guestWaits(/^owner-4\s*$/m, 'the earlier output after the reload');
  if (!/#share=wsshs_[0-9a-f]{64}$/.test(guest.url())) throw new Error(`the share token left the URL: ${guest.url()}`);
  await guest.reload();
  await guest.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  await guestWaits(/^owner-4\s*$/m, 'the earlier output after a second reload');
  await guestContext.close();
  check();

  step('a shell\'s URL opened signed out: signing in attaches to that shell');
  const freshContext = await browser.newContext({ viewport: { width: 1000, height: 600 } });
  const fresh = await freshContext.newPage();
  fresh.on('pageerror', (error) => problems.push(`fresh page error: ${error.stack || error}`));
  await fresh.goto(shellUrl);
  await fresh.locator('#signin-username').waitFor();
  await fresh.fill('#signin-username', username);
  await fresh.fill('#signin-password', password);
  await fresh.click('#signin-submit');
  await fresh.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  const freshScreen = () =>
    fresh.evaluate(() =>
      Array.from(document.querySelectorAll('#terminal .xterm-rows > div'), (row) => row.textContent.replace(/\u00a0/g, ' ')).join('\n'),
    );
  const freshDeadline = Date.now() + 15_000;
  while (!/^owner-4\s*$/m.test(await freshScreen())) {
    if (Date.now() > freshDeadline) throw new Error(`signing in did not attach to the shell:\n${await freshScreen()}`);
    await fresh.waitForTimeout(100);
  }
  await freshContext.close();
  check();

  if (process.env.WSSH_DROP) {
    step('the server restarts: the page says the connection was lost, and reconnects');
    const input = createInterface({ input: process.stdin });
    const restarted = new Promise((resolve) => input.once('line', resolve));
    console.log('e2e: drop the connection now');
    await restarted;
    input.close();
    await page.waitForFunction(() => /connection lost/.test(document.querySelector('#term-status').textContent));
    await page.locator('#term-reconnect:not([hidden])').waitFor();
    // The shell did not survive the restart: the page finds it gone and offers a new one.
    await page.waitForFunction(() => /the shell has ended|connection lost \(/.test(document.querySelector('#term-status').textContent));
    await shot('05b-connection-lost');
    // Its tries while the server was away show up as failed loads.
    problems.splice(0, problems.length, ...problems.filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection|Failed to load resource/.test(p)));
    await page.click('#term-reconnect');
    await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
    await type('echo back-$((3+4))');
    await waitForScreen(/^back-7\s*$/m, 'back-7');
    check();
  }

  step('the live shells are listed, to attach to or end');
  await page.click('#term-back');
  await page.locator('#shells-body button[data-shell]').first().waitFor();
  await shot('05e-live-shells');
  // Attach from the list: the page opens that very shell (its id in the URL) and types into it.
  const listed = await page.locator('#shells-body button[data-shell]').first().getAttribute('data-shell');
  await page.locator(`#shells-body button[data-shell="${listed}"]`).click();
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected');
  if (new URL(page.url()).searchParams.get('shell') !== listed) {
    throw new Error(`attaching to ${listed} opened ${page.url()}`);
  }
  await type('echo listed-$((5+6))');
  await waitForScreen(/^listed-11\s*$/m, 'listed-11');
  // End it from the list: the list, read again from the server, no longer has it.
  await page.click('#term-back');
  const row = page.locator(`#shells-body tr:has(button[data-shell="${listed}"])`);
  await row.waitFor();
  await row.locator('button.danger').click();
  await row.waitFor({ state: 'detached' });
  check();

  step('administrators manage sessions, users and tokens');
  await page.locator('#session-form').waitFor();
  await page.fill('#session-form input[name=name]', 'e2e-sh');
  await page.fill('#session-form input[name=cmd]', 'sh');
  await page.fill('#session-form input[name=args]', '-c "echo made by the page; exec sh"');
  await page.press('#session-form input[name=dir]', 'Enter');
  await page.locator('button[data-session="e2e-sh"]').waitFor();
  const made = await (await fetch(base + '/sessions', {
    method: 'POST',
    headers: { Authorization: `Bearer ${accessToken || oldJwt}`, 'x-HTTP-method-override': 'GET', 'Content-Type': 'application/json' },
    body: JSON.stringify({ session: { name: 'e2e-sh' } }),
  })).json();
  const args = JSON.stringify(made.sessions && made.sessions[0] && made.sessions[0].args);
  if (args !== JSON.stringify(['-c', 'echo made by the page; exec sh'])) throw new Error(`the new session has args ${args}`);
  // Copy through the dialog (Enter confirms), then delete the copy.
  await page.click('tr:has(button[data-session="e2e-sh"]) >> button:text-is("Copy")');
  await page.locator('#ask[open]').waitFor();
  await page.fill('#ask-fields input[name=name]', 'e2e-sh-2');
  await page.press('#ask-fields input[name=name]', 'Enter');
  await page.locator('button[data-session="e2e-sh-2"]').waitFor();
  await page.click('tr:has(button[data-session="e2e-sh-2"]) >> button:text-is("Delete")');
  await page.locator('#ask[open]').waitFor();
  await page.click('#ask-ok');
  await page.locator('button[data-session="e2e-sh-2"]').waitFor({ state: 'detached' });
  await page.click('#tabs [data-view=users]');
  await page.locator('#users-body tr').first().waitFor();
  await page.locator('#view-users >> text=admin').first().waitFor();
  // Until seed 004's role API is on this server, its 404 only hides the role editor.
  await page.waitForTimeout(200);
  problems.splice(0, problems.length, ...problems.filter((p) => !(/status of 404/.test(p) && p.includes('/role/list'))));
  await shot('06-users');
  await page.click('#tabs [data-view=tokens]');
  await page.locator('#tokens-body tr').first().waitFor();
  await shot('07-tokens');
  await page.click('#tabs [data-view=sessions]');
  check();

  step('sign out');
  const loggedOut = page.waitForResponse((r) => r.url().endsWith('/auth/logout'));
  await page.click('#signout');
  if ((await loggedOut).status() !== 200) throw new Error('sign-out was not accepted');
  await page.locator('#signin-username').waitFor();
  await shot('08-signed-out');
  const stale = await fetch(base + '/sessions', { headers: { Authorization: `Bearer ${oldJwt}` } });
  if (stale.status !== 401) throw new Error(`the old access token still works after sign-out (${stale.status})`);
  // A reload after sign-out asks for a sign-in again (no refresh attempt, no console error).
  await page.reload();
  await page.locator('#signin-username').waitFor();
  check();
  console.log(`revoked-jwt: ${oldJwt}`);

  if (accessToken) {
    step('sign in with an access token');
    await page.click('#signin-switch');
    await page.fill('#signin-token', accessToken);
    await page.click('#token-submit');
    await page.locator(`button[data-session="${session}"]`).waitFor();
    await page.click('#signout');
    await page.locator('#signin-token').waitFor();
    check();
  }
  console.log('e2e: all steps passed');
} catch (error) {
  if (page) await page.screenshot({ path: join(shots, 'failure.png') }).catch(() => {});
  console.error(`e2e failed: ${error.stack || error}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
