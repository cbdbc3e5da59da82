// wssh's page: the Recordings view (the shells' asciicast recordings, listed, played back with
// asciinema-player, deleted) and the Audit view (the audit log, paged and filtered, for those
// holding `audit:read`). Loaded before app.js, which hands it its API helpers
// (window.wsshRecordings.attach) and calls its loaders when a view is shown.
// The DOM is built with textContent only (never innerHTML).
'use strict';

(() => {
  const $ = (selector) => document.querySelector(selector);
  const PER_PAGE = 50;
  const AUDIT_KINDS = [
    'login', 'login.succeeded', 'login.failed', 'login.locked_out', 'token', 'token.minted', 'token.revoked',
    'password.changed', 'two_factor', 'two_factor.enabled', 'two_factor.disabled', 'user', 'user.created',
    'user.changed', 'user.deleted', 'role', 'role.created', 'role.changed', 'role.deleted', 'session',
    'session.created', 'session.changed', 'session.deleted', 'shell', 'shell.started', 'shell.attached',
    'shell.detached', 'shell.ended', 'share', 'share.created', 'share.used', 'share.revoked', 'recording',
    'recording.read', 'recording.deleted',
  ];

  let page = null; // { api, secret, base, notice, watch } from app.js
  const state = { recordingsPage: 1, recordingsTotal: 0, auditPage: 1, auditTotal: 0, auditFilter: {} };
  const playing = { player: null, id: null, cast: null, title: '' };

  /** An element with text and attributes. */
  function el(tag, text, attributes = {}) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  /** A button that runs `action`, reporting its failure. */
  function button(text, action, attributes = {}) {
    const node = el('button', text, { type: 'button', ...attributes });
    node.addEventListener('click', () => action().catch((error) => page.notice(error.message)));
    return node;
  }

  /** The API's envelope: { code, message, data }; code 200 is success. */
  async function call(method, path) {
    const reply = await page.api(method, path);
    if (reply && reply.code !== undefined && reply.code !== 200) throw new Error(reply.message || `error ${reply.code}`);
    return reply ? reply.data : null;
  }

  const query = (values) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(name, String(value));
    return params.toString();
  };

  function bytes(count) {
    if (count < 1024) return `${count} B`;
    if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
    return `${(count / 1024 / 1024).toFixed(1)} MiB`;
  }

  function duration(recording) {
    if (!recording.ended_at) return 'running';
    const seconds = Math.max(0, Math.round((Date.parse(recording.ended_at) - Date.parse(recording.started_at)) / 1000));
    const minutes = Math.floor(seconds / 60);
    const hours = Math.floor(minutes / 60);
    if (hours) return `${hours} h ${minutes % 60} min`;
    if (minutes) return `${minutes} min ${seconds % 60} s`;
    return `${seconds} s`;
  }

  function pager(prefix, current, total) {
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    $(`#${prefix}-page`).textContent = `Page ${current} of ${pages} (${total})`;
    $(`#${prefix}-prev`).disabled = current <= 1;
    $(`#${prefix}-next`).disabled = current >= pages;
  }

  // ---- Recordings.
  async function loadRecordings() {
    const data = await call('GET', `/api/recordings?${query({ page: state.recordingsPage, per_page: PER_PAGE })}`);
    const content = (data && data.content) || [];
    state.recordingsTotal = (data && data.total) || 0;
    const rows = content.map((recording) => {
      const row = el('tr', undefined, { 'data-recording': recording.id });
      row.append(
        el('td', recording.user),
        el('td', recording.session),
        el('td', new Date(recording.started_at).toLocaleString()),
        el('td', duration(recording)),
        el('td', bytes(recording.output_bytes) + (recording.dropped_bytes ? ` (${bytes(recording.dropped_bytes)} dropped)` : '')),
        el('td', recording.exit_status === null || recording.exit_status === undefined ? '—' : recording.exit_status),
      );
      const manage = el('td');
      manage.append(button('Play', () => play(recording), { 'data-play': recording.id }), ' ');
      // A recording still being written belongs to a live shell: watch it live, read-only
      // (observe mode; the recording's id is the shell's).
      if (!recording.ended_at && page.watch) {
        manage.append(button('Watch live', async () => page.watch(recording.session, recording.id), { 'data-watch': recording.id }), ' ');
      }
      manage.append(
        button('Delete', () => remove(recording), { class: 'danger', 'data-delete': recording.id }),
      );
      row.append(manage);
      return row;
    });
    $('#recordings-body').replaceChildren(...rows);
    $('#recordings-empty').hidden = rows.length > 0;
    pager('recordings', state.recordingsPage, state.recordingsTotal);
  }

  /** The recording's asciicast file, fetched with the page's credentials. */
  async function cast(id) {
    const response = await fetch(`${page.base()}/api/recordings/${encodeURIComponent(id)}`, {
      headers: { Authorization: `Bearer ${await page.secret()}` },
      credentials: 'same-origin',
    });
    const text = await response.text();
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = JSON.parse(text).message || message; } catch { /* not JSON */ }
      throw new Error(`The recording could not be loaded: ${message}`);
    }
    return text;
  }

  /** Shows `text` in a new player, at `startAt` seconds and the chosen speed. */
  function mount(text, startAt, autoPlay) {
    closePlayer(false);
    if (!window.AsciinemaPlayer) throw new Error('The recording player (asciinema-player) was not built into this server.');
    const speed = Number($('#player-speed').value) || 1;
    playing.player = window.AsciinemaPlayer.create({ data: text }, $('#player'), {
      autoPlay,
      speed,
      startAt,
      fit: 'width',
      idleTimeLimit: 2,
      controls: true,
    });
  }

  async function play(recording) {
    const text = await cast(recording.id);
    Object.assign(playing, { id: recording.id, cast: text });
    $('#player-title').textContent = `${recording.session} — ${recording.user}, ${new Date(recording.started_at).toLocaleString()}`;
    $('#player-box').hidden = false;
    mount(text, 0, true);
    $('#player-box').scrollIntoView({ block: 'nearest' });
  }

  /** Disposes of the player; `forget` also drops the recording it held. */
  function closePlayer(forget = true) {
    if (playing.player) {
      playing.player.dispose();
      playing.player = null;
    }
    $('#player').replaceChildren();
    if (forget) {
      Object.assign(playing, { id: null, cast: null });
      $('#player-box').hidden = true;
      $('#player-title').textContent = '';
    }
  }

  async function remove(recording) {
    if (!window.confirm(`Delete the recording of ${recording.user}'s ${recording.session} shell? This cannot be undone.`)) return;
    await call('DELETE', `/api/recordings/${encodeURIComponent(recording.id)}`);
    if (playing.id === recording.id) closePlayer();
    await loadRecordings();
  }

  // The player itself has no speed control: a new one at the same place, at the new speed.
  $('#player-speed').addEventListener('change', () => {
    if (!playing.cast || !playing.player) return;
    const at = playing.player.getCurrentTime() || 0;
    mount(playing.cast, at, true);
  });
  $('#player-close').addEventListener('click', () => closePlayer());
  $('#recordings-prev').addEventListener('click', () => {
    state.recordingsPage = Math.max(1, state.recordingsPage - 1);
    loadRecordings().catch((error) => page.notice(error.message));
  });
  $('#recordings-next').addEventListener('click', () => {
    state.recordingsPage += 1;
    loadRecordings().catch((error) => page.notice(error.message));
  });

  // ---- Audit log.
  /** An event's own fields (besides id, time, actor and kind), as `name: value` text. */
  function details(event) {
    return Object.entries(event)
      .filter(([name]) => !['id', 'at_ms', 'actor', 'kind'].includes(name))
      .map(([name, value]) => `${name}: ${typeof value === 'object' && value !== null ? JSON.stringify(value) : value}`)
      .join(', ');
  }

  function actor(event) {
    if (!event.actor) return '—';
    const how = event.actor.method === 'token' && event.actor.token ? `token ${event.actor.token}` : event.actor.method;
    return `${event.actor.username} (${how})`;
  }

  async function loadAudit() {
    const values = { page: state.auditPage, per_page: PER_PAGE, ...state.auditFilter };
    const data = await call('GET', `/api/audit?${query(values)}`);
    const content = (data && data.content) || [];
    state.auditTotal = (data && data.total) || 0;
    const rows = content.map((event) => {
      const row = el('tr', undefined, { 'data-kind': event.kind });
      row.append(
        el('td', event.id),
        el('td', new Date(event.at_ms).toLocaleString()),
        el('td', event.kind),
        el('td', actor(event)),
        el('td', details(event), { class: 'details' }),
      );
      return row;
    });
    $('#audit-body').replaceChildren(...rows);
    $('#audit-empty').hidden = rows.length > 0;
    pager('audit', state.auditPage, state.auditTotal);
  }

  $('#audit-kinds').replaceChildren(...AUDIT_KINDS.map((kind) => el('option', undefined, { value: kind })));
  $('#audit-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target;
    state.auditFilter = { kind: form.elements.kind.value.trim(), user: form.elements.user.value.trim() };
    state.auditPage = 1;
    loadAudit().catch((error) => page.notice(error.message));
  });
  $('#audit-filter').addEventListener('reset', () => {
    state.auditFilter = {};
    state.auditPage = 1;
    setTimeout(() => loadAudit().catch((error) => page.notice(error.message)));
  });
  $('#audit-prev').addEventListener('click', () => {
    state.auditPage = Math.max(1, state.auditPage - 1);
    loadAudit().catch((error) => page.notice(error.message));
  });
  $('#audit-next').addEventListener('click', () => {
    state.auditPage += 1;
    loadAudit().catch((error) => page.notice(error.message));
  });

  /** Drops everything shown (on sign-out). */
  function forget() {
    closePlayer();
    Object.assign(state, { recordingsPage: 1, recordingsTotal: 0, auditPage: 1, auditTotal: 0, auditFilter: {} });
    $('#recordings-body').replaceChildren();
    $('#audit-body').replaceChildren();
    for (const input of $('#audit-filter').elements) if (input.name) input.value = '';
  }

  window.wsshRecordings = {
    /** Called by app.js once: { api, secret, base, notice }. */
    attach(helpers) {
      page = helpers;
    },
    loadRecordings,
    loadAudit,
    forget,
  };
})();
