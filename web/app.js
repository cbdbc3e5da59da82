// wssh's page: sign-in, the session list, a full-window terminal, and the admin pages.
// Plain JavaScript, no framework. The DOM is built with textContent only (never innerHTML).
'use strict';

(() => {
  // ---- Content-Security-Policy: xterm.js creates <style> elements; the policy admits only those
  // carrying this page's nonce, which the server put on this script's tag.
  const styleNonce = document.currentScript && document.currentScript.nonce;
  if (styleNonce) {
    const createElement = Document.prototype.createElement;
    Document.prototype.createElement = function (name, options) {
      const element = createElement.call(this, name, options);
      if (String(name).toLowerCase() === 'style') element.nonce = styleNonce;
      return element;
    };
  }

  const $ = (selector) => document.querySelector(selector);
  // The path the server is mounted under ('' or e.g. '/wssh'): the page is always its root.
  const BASE = new URL('.', location.href).pathname.replace(/\/$/, '');
  const LOGIN_HINT = 'wssh.login'; // "a refresh cookie may exist": never a secret
  const NATIVE = 'wssh.v1';
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  /** Builds an element: h('td', {className: 'x'}, 'text', child). */
  function h(tag, props, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === 'dataset') Object.assign(element.dataset, value);
      else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
      else element[key] = value;
    }
    for (const child of children) {
      if (child !== null && child !== undefined) element.append(child instanceof Node ? child : String(child));
    }
    return element;
  }

  function notice(text, isError = true) {
    const box = $('#notice');
    box.textContent = text || '';
    box.classList.toggle('error', isError);
    box.hidden = !text;
  }

  // ---- Credentials: an access JWT (from a password sign-in) kept in memory and refreshed
  // through /auth/session with the HttpOnly cookie, or an access token pasted by the user.
  const auth = { kind: null, secret: null, expires: 0, username: '', timer: null, refreshing: null };

  function jwtExpiry(jwt) {
    try {
      const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload)).exp * 1000;
    } catch {
      return Date.now() + 60_000;
    }
  }

  function bearerOf(response) {
    const header = response.headers.get('Authorization') || '';
    return header.startsWith('Bearer ') ? header.slice(7).trim() : '';
  }

  function adoptJwt(jwt) {
    auth.kind = 'jwt';
    auth.secret = jwt;
    auth.expires = jwtExpiry(jwt);
    clearTimeout(auth.timer);
    // Refresh a minute before expiry (at least 5 s from now).
    auth.timer = setTimeout(backgroundRefresh, Math.max(5_000, auth.expires - Date.now() - 60_000));
  }

  /** The timed refresh: a refused one ends the sign-in; a network failure is retried. */
  function backgroundRefresh() {
    refresh().catch((error) => {
      if (auth.kind !== 'jwt') return;
      if (error.message === 'signed out') signedOut('Your sign-in has ended. Please sign in again.');
      else auth.timer = setTimeout(backgroundRefresh, 30_000);
    });
  }

  /** Rotates the refresh cookie for a fresh access JWT. One at a time, across tabs too: a
   * refresh token presented twice is taken as stolen and ends the login. */
  function refresh() {
    if (auth.refreshing) return auth.refreshing;
    const run = async () => {
      const response = await fetch(`${BASE}/auth/session`, { method: 'POST', credentials: 'same-origin' });
      const jwt = response.status === 204 ? bearerOf(response) : '';
      if (!jwt) throw new Error('signed out');
      adoptJwt(jwt);
      return jwt;
    };
    const locked = navigator.locks ? navigator.locks.request('wssh-refresh', run) : run();
    auth.refreshing = locked.finally(() => { auth.refreshing = null; });
    return auth.refreshing;
  }

  /** The current secret, refreshed first when it is about to expire. */
  async function currentSecret() {
    if (auth.kind === 'jwt' && auth.expires - Date.now() < 30_000) {
      try {
        await refresh();
      } catch (error) {
        if (error.message === 'signed out') signedOut('Your sign-in has ended. Please sign in again.');
        throw error;
      }
    }
    return auth.secret;
  }

  /** A JSON API call with the current credentials; one refresh and retry on 401. */
  async function api(method, path, body, { list = false, retried = false } = {}) {
    const secret = await currentSecret();
    const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${secret}` };
    if (list) headers['x-HTTP-method-override'] = 'GET';
    const response = await fetch(BASE + path, {
      method: list ? 'POST' : method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
    if (response.status === 401 && auth.kind === 'jwt' && !retried) {
      try {
        await refresh();
      } catch {
        signedOut('Your sign-in has ended. Please sign in again.');
        throw new Error('signed out');
      }
      return api(method, path, body, { list, retried: true });
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok) {
      const message = (data && (data.message || data.msg || data.error)) || `${response.status} ${response.statusText}`;
      const error = new Error(String(message).replace(/^Error: /, ''));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  const list = (path, body = {}) => api('POST', path, body, { list: true });

  // ---- Sign-in and sign-out.
  function showSignin(message) {
    $('#app').hidden = true;
    $('#terminal-view').hidden = true;
    $('#signin').hidden = false;
    notice(message || '', true);
    (auth.kind === null && !$('#token-form').hidden ? $('#signin-token') : $('#signin-username')).focus();
  }

  /** Forgets everything this tab holds. */
  function forget() {
    clearTimeout(auth.timer);
    Object.assign(auth, { kind: null, secret: null, expires: 0, username: '', timer: null });
    closeTerminal();
    if (window.wsshRecordings) window.wsshRecordings.forget(); // web/recordings.js
    for (const body of ['#sessions-body', '#users-body', '#tokens-body']) $(body).replaceChildren();
    $('#token-secret').hidden = true;
    $('#token-secret').textContent = '';
  }

  function signedOut(message) {
    forget();
    localStorage.removeItem(LOGIN_HINT);
    showSignin(message);
  }

  $('#password-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = $('#signin-submit');
    const body = { username: $('#signin-username').value, password: $('#signin-password').value };
    const otp = $('#signin-otp').value.replace(/\s+/g, '');
    if (otp) body.otp_code = otp;
    button.disabled = true;
    try {
      const response = await fetch(`${BASE}/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'same-origin',
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        const message = data.message || data.msg || `${response.status} ${response.statusText}`;
        if (response.status === 401 && /code|otp|totp|2fa|two-factor/i.test(message)) {
          $('#otp-label').hidden = false;
          $('#signin-otp').focus();
        }
        notice(message);
        return;
      }
      const jwt = bearerOf(response) || (data.data && data.data.token) || '';
      if (!jwt) throw new Error('the server sent no access token');
      adoptJwt(jwt);
      localStorage.setItem(LOGIN_HINT, '1');
      $('#signin-password').value = '';
      $('#signin-otp').value = '';
      await enter();
      openWantedShell();
    } catch (error) {
      notice(`Sign-in failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });

  $('#token-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = $('#signin-token').value.trim();
    Object.assign(auth, { kind: 'token', secret: token, expires: Infinity });
    try {
      await enter();
      $('#signin-token').value = '';
      openWantedShell();
    } catch (error) {
      forget();
      notice(`Sign-in failed: ${error.message}`);
    }
  });

  $('#signin-switch').addEventListener('click', () => {
    const toToken = $('#token-form').hidden;
    $('#token-form').hidden = !toToken;
    $('#password-form').hidden = toToken;
    $('#signin-switch').textContent = toToken ? 'Use a user name and password instead' : 'Use an access token instead';
    (toToken ? $('#signin-token') : $('#signin-username')).focus();
  });

  $('#signout').addEventListener('click', async () => {
    const { kind } = auth;
    if (kind === 'jwt') {
      try {
        // Ends the login on the server: its access JWTs and refresh cookie stop working.
        await fetch(`${BASE}/auth/logout`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${auth.secret}` },
          credentials: 'same-origin',
        });
      } catch {
        // Offline: the login ends by itself when its tokens expire; forget it here anyway.
      }
    }
    signedOut('');
    notice(kind === 'token' ? 'Signed out. The access token itself stays valid until revoked.' : 'Signed out.', false);
  });

  // Another tab signed out: so does this one.
  window.addEventListener('storage', (event) => {
    if (event.key === LOGIN_HINT && event.newValue === null && auth.kind === 'jwt') signedOut('Signed out in another tab.');
  });

  // ---- The signed-in pages.
  let canManage = false;
  let rolesApi = null; // null: not probed yet; false: absent; else the role list

  async function enter() {
    const sessions = await list('/sessions');
    auth.username = sessions.username || auth.username;
    $('#whoami').textContent = auth.username;
    let me = null;
    try {
      const credentials = await list('/credentials', { credential: { username: auth.username } });
      me = (credentials.credentials || []).find((credential) => credential.username === auth.username) || null;
    } catch {
      me = null;
    }
    canManage = !!(me && (me.roles || []).includes('admin'));
    document.body.classList.toggle('can-manage', canManage);
    $('#tabs [data-view=users]').hidden = !canManage;
    $('#tabs [data-view=audit]').hidden = !canManage; // audit:read: administrators hold it
    notice('');
    $('#signin').hidden = true;
    $('#app').hidden = false;
    renderSessions(sessions.sessions || []);
    show('sessions');
  }

  function show(view) {
    for (const button of document.querySelectorAll('#tabs button')) {
      if (button.dataset.view === view) button.setAttribute('aria-current', 'page');
      else button.removeAttribute('aria-current');
    }
    for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${view}`;
    const load = { sessions: loadSessions, users: loadUsers, tokens: loadTokens, account: () => window.wsshAccount.load(),
      recordings: () => window.wsshRecordings.loadRecordings(), audit: () => window.wsshRecordings.loadAudit() }[view]; // web/recordings.js
    load().catch((error) => notice(error.message));
  }

  if (window.wsshAccount) window.wsshAccount.attach({ api, username: () => auth.username }); // web/account.js
  if (window.wsshRecordings) window.wsshRecordings.attach({
    api, secret: currentSecret, base: () => BASE, notice,
    watch: (session, shell) => openTerminal(session, { shell, mode: 'observe' }),
  }); // web/recordings.js

  $('#tabs').addEventListener('click', (event) => {
    const view = event.target.closest('button') && event.target.closest('button').dataset.view;
    if (view) show(view);
  });

  const when = (stamp) => (stamp ? new Date(stamp).toLocaleString() : '—');

  /** Splits a command line's arguments: whitespace separates, quotes group, backslash escapes. */
  function splitArgs(text) {
    const args = [];
    let current = null;
    let quote = null;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quote) {
        if (c === quote) quote = null;
        else if (c === '\\' && quote === '"' && i + 1 < text.length) current += text[++i];
        else current += c;
      } else if (c === '"' || c === "'") {
        quote = c;
        current = current ?? '';
      } else if (c === '\\' && i + 1 < text.length) {
        current = (current ?? '') + text[++i];
      } else if (/\s/.test(c)) {
        if (current !== null) args.push(current);
        current = null;
      } else {
        current = (current ?? '') + c;
      }
    }
    if (current !== null) args.push(current);
    return args;
  }

  const joinArgs = (args) => (args || []).map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/["\\]/g, '\\$&')}"`)).join(' ');

  async function loadSessions() {
    const reply = await list('/sessions');
    renderSessions(reply.sessions || []);
    await loadShells();
  }

  function renderSessions(sessions) {
    const rows = sessions.map((session) => h('tr', {},
      h('td', {}, h('button', { type: 'button', className: 'open', dataset: { session: session.name }, title: `Open ${session.name}`, onclick: () => openTerminal(session.name) }, session.name)),
      h('td', {}, h('code', {}, [session.cmd, joinArgs(session.args)].filter(Boolean).join(' '))),
      h('td', {}, session.dir || '~'),
      h('td', { className: 'actions manage' },
        h('button', { type: 'button', onclick: () => editSession(session) }, 'Edit'),
        h('button', { type: 'button', onclick: () => transferSession('COPY', session) }, 'Copy'),
        h('button', { type: 'button', onclick: () => transferSession('MOVE', session) }, 'Rename'),
        h('button', { type: 'button', className: 'danger', onclick: () => deleteSession(session) }, 'Delete'))));
    $('#sessions-body').replaceChildren(...rows);
    $('#sessions-empty').hidden = sessions.length > 0;
    $('#session-form').hidden = !canManage;
  }

  function editSession(session) {
    const form = $('#session-form');
    form.elements.editing.value = session.name;
    form.elements.name.value = session.name;
    form.elements.name.readOnly = true;
    form.elements.cmd.value = session.cmd;
    form.elements.args.value = joinArgs(session.args);
    form.elements.dir.value = session.dir || '';
    $('#session-form-title').textContent = `Edit ${session.name}`;
    form.elements.cmd.focus();
  }

  $('#session-form').addEventListener('reset', () => {
    const form = $('#session-form');
    form.elements.name.readOnly = false;
    $('#session-form-title').textContent = 'New session';
    setTimeout(() => { form.elements.editing.value = ''; }, 0);
  });

  $('#session-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const editing = form.elements.editing.value;
    const session = {
      name: form.elements.name.value.trim(),
      cmd: form.elements.cmd.value.trim(),
      args: splitArgs(form.elements.args.value),
      dir: form.elements.dir.value.trim(),
    };
    try {
      await api(editing ? 'PUT' : 'POST', '/sessions', { session });
      form.reset();
      notice(editing ? `Session ${session.name} saved.` : `Session ${session.name} created.`, false);
      await loadSessions();
    } catch (error) {
      notice(error.message);
    }
  });

  async function transferSession(method, session) {
    const values = await ask(method === 'COPY' ? `Copy ${session.name}` : `Rename ${session.name}`, [
      { name: 'name', label: 'New name', value: method === 'COPY' ? `${session.name}-copy` : session.name },
    ]);
    if (!values || !values.name.trim()) return;
    try {
      await api(method, '/sessions', { session: { name: session.name }, destination: { name: values.name.trim() } });
      notice(`Session ${session.name} ${method === 'COPY' ? 'copied' : 'renamed'} to ${values.name.trim()}.`, false);
      await loadSessions();
    } catch (error) {
      notice(error.message);
    }
  }

  async function deleteSession(session) {
    if (!(await ask(`Delete the session ${session.name}?`, []))) return;
    try {
      await api('DELETE', '/sessions', { session: { name: session.name } });
      notice(`Session ${session.name} deleted.`, false);
      await loadSessions();
    } catch (error) {
      notice(error.message);
    }
  }

  // ---- Users and roles (administrators).
  /** Seed 004's role API, when this server has it: {code, msg, data: {total, list}}. Without
   * it (404) the roles still show, from /credentials, but cannot be edited here. */
  async function roleList() {
    if (rolesApi !== null) return rolesApi;
    try {
      const reply = await api('GET', '/role/list');
      rolesApi = (reply && reply.data && reply.data.list) || false;
    } catch {
      rolesApi = false;
    }
    return rolesApi;
  }

  async function loadUsers() {
    const reply = await list('/credentials');
    const roles = await roleList();
    const rows = (reply.credentials || []).map((user) => h('tr', {},
      h('td', {}, user.username, user.disabled ? ' (disabled)' : ''),
      h('td', { className: 'roles-col' }, (user.roles || []).join(', ')),
      h('td', {}, when(user.created_at)),
      h('td', { className: 'actions' },
        h('button', { type: 'button', onclick: () => setPassword(user.username) }, 'Set password'),
        roles ? h('button', { type: 'button', onclick: () => editRoles(user, roles) }, 'Roles') : null,
        user.username === auth.username ? null : h('button', { type: 'button', className: 'danger', onclick: () => deleteUser(user.username) }, 'Delete'))));
    $('#users-body').replaceChildren(...rows);
  }

  $('#user-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const credential = { username: form.elements.username.value.trim(), password: form.elements.password.value };
    try {
      await api('POST', '/credentials', { credential });
      form.reset();
      notice(`User ${credential.username} created.`, false);
      await loadUsers();
    } catch (error) {
      notice(error.message);
    }
  });

  async function setPassword(username) {
    const values = await ask(`New password for ${username}`, [{ name: 'password', label: 'Password', type: 'password' }]);
    if (!values || !values.password) return;
    try {
      await api('PUT', '/credentials', { credential: { username, password: values.password } });
      notice(`Password of ${username} changed; their other tokens were revoked.`, false);
    } catch (error) {
      notice(error.message);
    }
  }

  async function deleteUser(username) {
    if (!(await ask(`Delete the user ${username} and all their tokens?`, []))) return;
    try {
      await api('DELETE', '/credentials', { credential: { username } });
      notice(`User ${username} deleted.`, false);
      await loadUsers();
    } catch (error) {
      notice(error.message);
    }
  }

  async function editRoles(user, roles) {
    const fields = roles.map((role) => ({
      name: String(role.roleId),
      label: `${role.roleName || role.roleKey} (${role.roleKey})`,
      type: 'checkbox',
      value: (user.roles || []).includes(role.roleKey),
    }));
    const values = await ask(`Roles of ${user.username}`, fields);
    if (!values) return;
    try {
      const info = await api('GET', `/user/info?username=${encodeURIComponent(user.username)}`);
      const data = (info && info.data) || {};
      const userId = data.userId ?? data.id ?? (data.user && (data.user.userId ?? data.user.id));
      if (userId === undefined) throw new Error('the server did not say which user this is');
      const chosen = roles.filter((role) => values[String(role.roleId)]).map((role) => role.roleId);
      await api('POST', `/user/${encodeURIComponent(userId)}/bind`, chosen);
      notice(`Roles of ${user.username} saved.`, false);
      await loadUsers();
    } catch (error) {
      notice(error.message);
    }
  }

  // ---- Tokens.
  async function loadTokens() {
    const reply = await list('/tokens');
    const rows = (reply.tokens || []).map((token) => h('tr', {},
      h('td', {}, h('code', {}, token.identifier)),
      h('td', {}, token.username),
      h('td', {}, token.description || ''),
      h('td', {}, when(token.created_at)),
      h('td', {}, token.expires_at ? when(token.expires_at) : 'never'),
      h('td', { className: 'actions' },
        h('button', { type: 'button', className: 'danger', onclick: () => revokeToken(token) }, 'Revoke'))));
    $('#tokens-body').replaceChildren(...rows);
  }

  async function revokeToken(token) {
    if (!(await ask(`Revoke the token ${token.identifier} of ${token.username}?`, []))) return;
    try {
      await api('DELETE', '/tokens', { token: { identifier: token.identifier } });
      notice(`Token ${token.identifier} revoked.`, false);
      await loadTokens();
    } catch (error) {
      notice(error.message);
    }
  }

  $('#token-create-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const reply = await api('POST', '/tokens', { token: { description: form.elements.description.value } });
      form.reset();
      const output = $('#token-secret');
      output.textContent = `Copy this token now, it is shown only once: ${reply.token.token}`;
      output.hidden = false;
      await loadTokens();
    } catch (error) {
      notice(error.message);
    }
  });

  // ---- A small modal form: resolves to the values, or null when cancelled.
  function ask(title, fields) {
    const dialog = $('#ask');
    $('#ask-title').textContent = title;
    const inputs = fields.map((field) => {
      const input = h('input', { name: field.name, type: field.type || 'text', autocomplete: 'off' });
      if (field.type === 'checkbox') input.checked = !!field.value;
      else input.value = field.value || '';
      return h('label', { className: field.type === 'checkbox' ? 'check' : '' },
        field.type === 'checkbox' ? input : field.label, field.type === 'checkbox' ? field.label : input);
    });
    $('#ask-fields').replaceChildren(...inputs);
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        if (dialog.returnValue !== 'ok') return resolve(null);
        const values = {};
        for (const input of $('#ask-fields').querySelectorAll('input')) {
          values[input.name] = input.type === 'checkbox' ? input.checked : input.value;
        }
        resolve(values);
      }, { once: true });
      dialog.returnValue = '';
      $('#ask-cancel').onclick = () => dialog.close('cancel');
      dialog.showModal();
      const first = $('#ask-fields input');
      (first || $('#ask-ok')).focus();
    });
  }

  // ---- The terminal: xterm.js with the fit addon, on the native framing (wssh.v1).
  // A shell opened here is a live shell: its id goes into the page's URL (?session=…&shell=…),
  // the page counts the output bytes it received, and a dropped connection or a reload
  // attaches again (with the count as offset, so nothing is lost or doubled).
  const terminal = {
    term: null, fit: null, socket: null, name: '', exited: false, opened: false, observer: null,
    shell: null, offset: 0, mode: 'control', share: null, retry: null, pause: 500,
  };

  function termStatus(text, bad = false) {
    $('#term-status').textContent = text;
    $('#term-status').classList.toggle('bad', bad);
  }

  function sendFrame(type, payload) {
    const socket = terminal.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const frame = new Uint8Array(1 + payload.length);
    frame[0] = type;
    frame.set(payload, 1);
    socket.send(frame);
  }

  function sendResize() {
    const { cols, rows } = terminal.term;
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint16(0, cols);
    new DataView(payload.buffer).setUint16(2, rows);
    sendFrame(0x01, payload);
    $('#term-size').textContent = `${cols}×${rows}`;
  }

  function fitTerminal() {
    if (!terminal.term) return;
    try {
      terminal.fit.fit();
    } catch {
      // Not laid out yet.
    }
    $('#term-size').textContent = `${terminal.term.cols}×${terminal.term.rows}`;
  }

  /** Puts the open shell in the page's URL, so that a reload or a bookmark comes back to it. */
  function rememberShell() {
    const fields = { session: terminal.name, shell: terminal.shell };
    // A watcher stays a watcher after a reload.
    if (terminal.mode === 'observe' && !terminal.share) fields.mode = 'observe';
    const query = terminal.shell ? `?${new URLSearchParams(fields)}` : '';
    // A share link's token stays in the fragment (never sent to a server), so a reload works.
    const fragment = terminal.share ? `#${new URLSearchParams({ share: terminal.share })}` : '';
    history.replaceState(null, '', `${location.pathname}${query}${fragment}`);
  }

  // The shell the page's URL asked for (a reload, a bookmark, a pasted link), opened once
  // signed in, however that happens.
  let wantedShell = null;
  function openWantedShell() {
    const wanted = wantedShell;
    wantedShell = null;
    if (wanted) openTerminal(wanted.session, { shell: wanted.shell, mode: wanted.mode });
  }

  function openTerminal(name, { shell = null, share = null, mode = 'control' } = {}) {
    if (typeof window.Terminal !== 'function' || !window.FitAddon) {
      $('#not-built').hidden = false;
      $('#not-built').scrollIntoView();
      return;
    }
    closeTerminal();
    Object.assign(terminal, { name, shell, share, offset: 0, mode, pause: 500 });
    $('#app').hidden = true;
    $('#signin').hidden = true;
    $('#terminal-view').hidden = false;
    $('#term-name').textContent = name;
    $('#term-back').hidden = !!share;
    const term = new window.Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      scrollback: 5000,
      ...(window.wsshSettings ? window.wsshSettings.terminalOptions() : {}), // web/account.js
    });
    const fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open($('#terminal'));
    terminal.term = term;
    terminal.fit = fit;
    term.onData((data) => {
      if (terminal.socket && terminal.socket.readyState === WebSocket.OPEN) {
        if (terminal.mode === 'control') sendFrame(0x00, encoder.encode(data));
      } else if (data === '\r') connect();
    });
    term.onBinary((data) => {
      if (terminal.mode === 'control') sendFrame(0x00, Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
    });
    term.onResize(() => sendResize());
    // The window title follows the program's (OSC 0 and 2): exactly what it sets, as a
    // terminal window's would be.
    term.onTitleChange((title) => {
      document.title = title || 'wssh';
    });
    terminal.observer = new ResizeObserver(() => fitTerminal());
    terminal.observer.observe($('#terminal'));
    fitTerminal();
    connect();
  }

  /** Whether the live shell `id` is still there (asked through the API). Throws when the
   *  server cannot be reached. */
  async function shellExists(id) {
    const reply = await api('GET', '/api/shells');
    return ((reply && reply.shells) || []).some((shell) => shell.id === id);
  }

  /** Tries again after a dropped connection, pausing longer each time (at most 5 s). */
  function scheduleReconnect() {
    clearTimeout(terminal.retry);
    terminal.retry = setTimeout(() => connect({ automatic: true }), terminal.pause);
    terminal.pause = Math.min(terminal.pause * 2, 5000);
  }

  async function connect({ automatic = false } = {}) {
    if (!terminal.term) return;
    if (terminal.socket && terminal.socket.readyState <= WebSocket.OPEN) return;
    clearTimeout(terminal.retry);
    // Only the latest call goes on past its waits (a click while a retry is under way).
    const attempt = (terminal.attempt = (terminal.attempt || 0) + 1);
    const superseded = () => attempt !== terminal.attempt || !terminal.term;
    if (!automatic) $('#term-reconnect').hidden = true;
    termStatus(automatic ? 'connection lost — reconnecting…' : 'connecting…', automatic);
    terminal.replaced = false;
    let secret;
    if (terminal.share) {
      secret = terminal.share;
    } else {
      try {
        secret = await currentSecret();
      } catch {
        if (superseded()) return;
        termStatus('could not refresh the sign-in: press Enter or Reconnect to try again', true);
        $('#term-reconnect').hidden = false;
        return;
      }
      if (superseded()) return;
      if (terminal.shell) {
        let exists;
        try {
          exists = await shellExists(terminal.shell);
          if (superseded()) return;
        } catch {
          if (superseded()) return;
          // The server cannot be reached: try again soon.
          termStatus('connection lost — reconnecting…', true);
          $('#term-reconnect').hidden = false;
          scheduleReconnect();
          return;
        }
        if (!exists) {
          terminal.shell = null;
          terminal.replaced = true;
          rememberShell();
          if (automatic) {
            termStatus('connection lost: the shell has ended. Press Enter or Reconnect for a new shell', true);
            $('#term-reconnect').hidden = false;
            return;
          }
        }
      }
    }
    // Browsers cannot set Authorization on a WebSocket: the credential travels as a second
    // subprotocol, go_ws_sh's URL-encoded query string; the server answers with wssh.v1.
    const credential = encodeURIComponent(new URLSearchParams({ type: 'token', token: secret }).toString());
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // Observe mode is asked for explicitly (watching from the Recordings view); otherwise the
    // server gives the mode the caller may have.
    const wanted = { shell: terminal.shell, offset: String(terminal.offset) };
    if (terminal.mode === 'observe') wanted.mode = 'observe';
    const attach = terminal.shell ? `?${new URLSearchParams(wanted)}` : '';
    if (!terminal.shell) terminal.offset = 0;
    const socket = new WebSocket(`${scheme}//${location.host}${BASE}/${encodeURIComponent(terminal.name)}${attach}`, [NATIVE, credential]);
    socket.binaryType = 'arraybuffer';
    terminal.socket = socket;
    terminal.exited = false;
    terminal.opened = false;
    socket.addEventListener('open', () => {
      terminal.opened = true;
      terminal.pause = 500;
      fitTerminal();
      sendResize(); // the first frame of a new shell must be a resize
      // Asked for a shell that has ended (a stale link or list): say that this one is new.
      termStatus(terminal.replaced ? 'connected to a new shell: the one asked for has ended' : 'connected');
      $('#term-reconnect').hidden = true;
      terminal.term.focus();
    });
    socket.addEventListener('message', (event) => {
      if (!(event.data instanceof ArrayBuffer) || event.data.byteLength === 0) return;
      const frame = new Uint8Array(event.data);
      if (frame[0] === 0x00) {
        terminal.term.write(frame.subarray(1));
        terminal.offset += frame.length - 1;
      } else if (frame[0] === 0x04) {
        // The shell, and the offset of the first output byte this connection brings.
        const hello = JSON.parse(decoder.decode(frame.subarray(1)));
        if (terminal.shell !== hello.shell) terminal.term.reset();
        Object.assign(terminal, { shell: hello.shell, offset: hello.offset, mode: hello.mode });
        $('#term-mode').hidden = hello.mode !== 'observe';
        $('#term-share').hidden = !!terminal.share || hello.mode !== 'control';
        rememberShell();
      } else if (frame[0] === 0x05) {
        const gap = JSON.parse(decoder.decode(frame.subarray(1)));
        terminal.offset = gap.from;
      } else if (frame[0] === 0x06) {
        // After a gap: the screen as it stood where the output goes on.
        terminal.term.reset();
        terminal.term.write(frame.subarray(1));
      } else if (frame[0] === 0x02 && frame.length >= 5) {
        terminal.exited = true;
        terminal.shell = null;
        rememberShell();
        const status = new DataView(event.data).getInt32(1);
        termStatus(status === -1 ? 'the shell was killed by a signal' : `the shell exited with status ${status}`, status !== 0);
      } else if (frame[0] === 0x03) {
        terminal.exited = true;
        termStatus(`error: ${decoder.decode(frame.subarray(1))}`, true);
      }
    });
    socket.addEventListener('close', (event) => {
      if (terminal.socket !== socket) return; // replaced or closed on purpose
      terminal.socket = null;
      // Dropped without the server ending anything: come back to the same shell on our own.
      if (terminal.opened && !terminal.exited && terminal.shell && event.code === 1006) {
        termStatus('connection lost — reconnecting…', true);
        $('#term-reconnect').hidden = false;
        scheduleReconnect();
        return;
      }
      if (terminal.share && !terminal.opened) {
        termStatus('could not connect: the shell may have ended, or the link may no longer work', true);
      } else if (!terminal.opened) {
        termStatus('could not connect: the session may be gone, or your sign-in may have ended', true);
        if (auth.kind === 'jwt') {
          refresh().catch((error) => {
            if (error.message === 'signed out') signedOut('Your sign-in has ended. Please sign in again.');
          });
        }
      } else if (!terminal.exited) {
        terminal.shell = null;
        rememberShell();
        termStatus(`connection lost${event.code ? ` (${event.code}${event.reason ? `: ${event.reason}` : ''})` : ''}`, true);
      }
      if (terminal.term) terminal.term.write('\r\n\x1b[2m[disconnected: press Enter or Reconnect for a new shell]\x1b[0m\r\n');
      $('#term-reconnect').hidden = false;
      $('#term-reconnect').focus();
    });
  }

  function closeTerminal() {
    const { socket, term, observer } = terminal;
    clearTimeout(terminal.retry);
    terminal.socket = null;
    if (socket) socket.close(1000, 'closed by the user');
    if (observer) observer.disconnect();
    if (term) term.dispose();
    Object.assign(terminal, {
      term: null, fit: null, observer: null, name: '', exited: false, opened: false,
      shell: null, offset: 0, mode: 'control', share: null, retry: null,
    });
    $('#terminal').replaceChildren();
    $('#terminal-view').hidden = true;
    $('#term-size').textContent = '';
    $('#term-mode').hidden = true;
    $('#term-share').hidden = true;
    $('#share-link').hidden = true;
    $('#share-label').hidden = true;
    $('#share-link').value = '';
    document.title = 'wssh';
    if (location.search) history.replaceState(null, '', location.pathname);
  }

  $('#term-reconnect').addEventListener('click', () => {
    if (terminal.term) terminal.term.focus();
    terminal.pause = 500;
    connect();
  });
  $('#term-back').addEventListener('click', () => {
    closeTerminal();
    $('#app').hidden = false;
    loadSessions().catch((error) => notice(error.message));
  });
  $('#term-share').addEventListener('click', async () => {
    if (!terminal.shell) return;
    const values = await ask('Share this shell', [
      { name: 'control', type: 'checkbox', label: 'Let them type too (control); otherwise they only watch' },
      { name: 'minutes', label: 'The link works for (minutes)', value: '60' },
    ]);
    if (!values) return;
    const minutes = Number(values.minutes);
    if (!Number.isInteger(minutes) || minutes < 1) return notice('Give the link a whole number of minutes.');
    try {
      const made = await api('POST', `/api/shells/${encodeURIComponent(terminal.shell)}/shares`, {
        mode: values.control ? 'control' : 'observe',
        expires_in: minutes * 60,
      });
      $('#share-link').value = made.link;
      $('#share-label').textContent = 'Share link:';
      $('#share-link').hidden = false;
      $('#share-label').hidden = false;
      $('#share-link').select();
      let copied = false;
      if (navigator.clipboard) copied = await navigator.clipboard.writeText(made.link).then(() => true, () => false);
      $('#share-label').textContent = copied
        ? 'Share link (copied — send it to them):'
        : 'Share link (copy it and send it to them):';
    } catch (error) {
      notice(error.message);
    }
  });
  window.addEventListener('resize', () => fitTerminal());
  window.addEventListener('online', () => {
    if (terminal.term && !terminal.socket && terminal.shell) connect({ automatic: true });
    else if (terminal.term && !terminal.socket && !$('#term-reconnect').hidden) termStatus('back online: press Enter or Reconnect');
  });

  // ---- Live shells: the caller's (and those they may watch), to attach to or end.
  async function loadShells() {
    let reply;
    try {
      reply = await api('GET', '/api/shells');
    } catch {
      $('#live-shells').hidden = true;
      return;
    }
    const shells = (reply && reply.shells) || [];
    const rows = shells.map((shell) => h('tr', {},
      h('td', {}, shell.session),
      h('td', {}, h('code', {}, shell.id.slice(0, 8))),
      h('td', {}, shell.owner),
      h('td', {}, shell.clients.map((client) => `${client.user} (${client.mode})`).join(', ') || '—'),
      h('td', {}, shell.detached_since ? `detached since ${when(shell.detached_since)}` : 'attached'),
      h('td', { className: 'actions' },
        h('button', { type: 'button', dataset: { shell: shell.id }, onclick: () => openTerminal(shell.session, { shell: shell.id }) }, 'Attach'),
        h('button', { type: 'button', className: 'danger', onclick: () => endShell(shell) }, 'End'))));
    $('#shells-body').replaceChildren(...rows);
    $('#live-shells').hidden = shells.length === 0;
  }

  async function endShell(shell) {
    try {
      await api('DELETE', `/api/shells/${encodeURIComponent(shell.id)}`);
    } catch (error) {
      notice(error.message);
    }
    await loadShells();
  }

  // ---- Start: restore a login through the refresh cookie when one may exist.
  async function start() {
    $('#not-built').hidden = typeof window.Terminal === 'function';
    const wanted = new URLSearchParams(location.search);
    const share = new URLSearchParams(location.hash.slice(1)).get('share');
    if (share && wanted.get('session') && wanted.get('shell')) {
      // A share link: its token (in the fragment, never sent in a request line) opens its shell.
      openTerminal(wanted.get('session'), { shell: wanted.get('shell'), share });
      return;
    }
    if (wanted.get('session') && wanted.get('shell')) {
      const mode = wanted.get('mode') === 'observe' ? 'observe' : 'control';
      wantedShell = { session: wanted.get('session'), shell: wanted.get('shell'), mode };
    }
    if (localStorage.getItem(LOGIN_HINT)) {
      try {
        await refresh();
        await enter();
        openWantedShell();
        return;
      } catch {
        localStorage.removeItem(LOGIN_HINT);
        forget();
      }
    }
    showSignin();
  }

  start();
})();
