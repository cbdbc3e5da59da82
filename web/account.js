// wssh's page: the account view (own password, two-factor authentication, own access tokens) and the terminal
// settings kept in this browser (localStorage). Loaded before app.js, which hands it its API
// helper (window.wsshAccount.attach) and asks it for terminal options (window.wsshSettings).
// The DOM is built with textContent only (never innerHTML).
'use strict';

(() => {
  const $ = (selector) => document.querySelector(selector);
  const SETTINGS_KEY = 'wssh.settings';
  const THEMES = {
    dark: { background: '#15171c', foreground: '#e4e6eb', cursor: '#e4e6eb' },
    light: { background: '#ffffff', foreground: '#1b1d22', cursor: '#1b1d22', selectionBackground: '#c8d7f5' },
    solarized: { background: '#002b36', foreground: '#839496', cursor: '#93a1a1' },
  };
  const DEFAULTS = { fontSize: 14, theme: 'dark', cursorStyle: 'block', cursorBlink: true };

  /** The settings kept in this browser, every value checked. */
  function readSettings() {
    let stored = {};
    try {
      stored = JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}') || {};
    } catch {
      stored = {};
    }
    const fontSize = Number(stored.fontSize);
    return {
      fontSize: Number.isInteger(fontSize) && fontSize >= 8 && fontSize <= 40 ? fontSize : DEFAULTS.fontSize,
      theme: Object.hasOwn(THEMES, stored.theme) ? stored.theme : DEFAULTS.theme,
      cursorStyle: ['block', 'underline', 'bar'].includes(stored.cursorStyle) ? stored.cursorStyle : DEFAULTS.cursorStyle,
      cursorBlink: typeof stored.cursorBlink === 'boolean' ? stored.cursorBlink : DEFAULTS.cursorBlink,
    };
  }

  window.wsshSettings = {
    /** Options for a new xterm.js terminal. */
    terminalOptions() {
      const settings = readSettings();
      return {
        fontSize: settings.fontSize,
        theme: THEMES[settings.theme],
        cursorStyle: settings.cursorStyle,
        cursorBlink: settings.cursorBlink,
      };
    },
  };

  let page = null; // { api, username } from app.js

  function say(selector, text, ok = true) {
    const out = $(selector);
    out.textContent = text;
    out.classList.toggle('error', !ok);
    out.hidden = !text;
  }

  function fillSettings() {
    const settings = readSettings();
    const form = $('#settings-form');
    form.elements.fontSize.value = String(settings.fontSize);
    form.elements.theme.value = settings.theme;
    form.elements.cursorStyle.value = settings.cursorStyle;
    form.elements.cursorBlink.checked = settings.cursorBlink;
  }

  $('#settings-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target;
    const settings = {
      fontSize: Number(form.elements.fontSize.value),
      theme: form.elements.theme.value,
      cursorStyle: form.elements.cursorStyle.value,
      cursorBlink: form.elements.cursorBlink.checked,
    };
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
    fillSettings();
    say('#settings-result', 'Saved in this browser: terminals opened from now on use it.');
  });

  $('#password-change-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    if (form.elements.password.value !== form.elements.again.value) {
      say('#password-result', 'The two passwords differ.', false);
      return;
    }
    try {
      await page.api('PUT', '/credentials', { credential: { username: page.username(), password: form.elements.password.value } });
      form.reset();
      say('#password-result', 'Password changed. Your other sign-ins and tokens have been ended; this one stays.');
    } catch (error) {
      say('#password-result', error.message, false);
    }
  });

  /** alist's envelope: { code, message, data }; code 200 is success. */
  async function alist(method, path, body) {
    const reply = await page.api(method, path, body);
    if (reply && reply.code !== undefined && reply.code !== 200) throw new Error(reply.message || `error ${reply.code}`);
    return reply ? reply.data : null;
  }

  $('#totp-start').addEventListener('click', async () => {
    try {
      const enrolment = await alist('POST', '/api/auth/2fa/generate', {});
      $('#totp-qr').src = enrolment.qr;
      $('#totp-secret').textContent = enrolment.secret;
      $('#totp-enrol').hidden = false;
      $('#totp-enrol').elements.code.focus();
      say('#totp-result', '');
    } catch (error) {
      say('#totp-result', error.message, false);
    }
  });

  $('#totp-enrol').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await alist('POST', '/api/auth/2fa/verify', { code: form.elements.code.value.replace(/\s+/g, ''), secret: $('#totp-secret').textContent });
      form.reset();
      form.hidden = true;
      $('#totp-qr').removeAttribute('src');
      $('#totp-secret').textContent = '';
      say('#totp-result', 'Two-factor authentication is on: signing in now asks for a code.');
      await load();
    } catch (error) {
      say('#totp-result', error.message, false);
    }
  });

  $('#totp-off').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await alist('POST', '/api/auth/2fa/cancel', { code: form.elements.code.value.replace(/\s+/g, '') });
      form.reset();
      say('#totp-result', 'Two-factor authentication is off.');
      await load();
    } catch (error) {
      say('#totp-result', error.message, false);
    }
  });

  /** A date for the tokens table. */
  function when(text) {
    return text ? new Date(text).toLocaleString() : 'never';
  }

  /** Lists the caller's own tokens (go_ws_sh's /tokens, filtered to the caller). */
  async function loadTokens() {
    const reply = await page.api('GET', '/tokens', { token: { username: page.username() } }, { list: true });
    const body = $('#own-token-table tbody');
    body.replaceChildren();
    for (const token of reply.tokens) {
      const row = document.createElement('tr');
      for (const text of [token.description, token.identifier, when(token.created_at), when(token.expires_at)]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      const cell = document.createElement('td');
      const revoke = document.createElement('button');
      revoke.type = 'button';
      revoke.className = 'danger';
      revoke.textContent = 'Revoke';
      revoke.dataset.token = token.identifier;
      revoke.addEventListener('click', async () => {
        try {
          await page.api('DELETE', '/tokens', { token: { identifier: token.identifier } });
          say('#own-token-result', `Token ${token.identifier} revoked.`);
          await loadTokens();
        } catch (error) {
          say('#own-token-result', error.message, false);
        }
      });
      cell.append(revoke);
      row.append(cell);
      body.append(row);
    }
    $('#own-token-table').hidden = reply.tokens.length === 0;
    $('#own-token-empty').hidden = reply.tokens.length !== 0;
  }

  $('#own-token-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const reply = await page.api('POST', '/tokens', {
        token: { description: form.elements.description.value, expires_in_days: Number(form.elements.days.value) },
      });
      form.reset();
      $('#own-token-secret').value = reply.token.token;
      $('#own-token-secret-box').hidden = false;
      $('#own-token-secret').select();
      say('#own-token-result', '');
      await loadTokens();
    } catch (error) {
      say('#own-token-result', error.message, false);
    }
  });

  /** Fills the account view. */
  async function load() {
    fillSettings();
    $('#account-name').textContent = page.username();
    try {
      const me = await alist('GET', '/api/me');
      const on = !!me.otp;
      $('#totp-state').textContent = on ? 'on' : 'off';
      $('#totp-start').hidden = on;
      $('#totp-off').hidden = !on;
    } catch {
      $('#totp-state').textContent = 'unknown';
    }
    $('#own-token-secret-box').hidden = true;
    $('#own-token-secret').value = '';
    try {
      await loadTokens();
    } catch (error) {
      say('#own-token-result', error.message, false);
    }
  }

  window.wsshAccount = {
    /** Called by app.js once: its API helper and the signed-in user's name. */
    attach(helpers) {
      page = helpers;
    },
    load,
  };
})();
