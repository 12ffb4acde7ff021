// hookd console: a single-page client of hookd's own JSON API.
// Credentials live in sessionStorage only (this tab, until sign-out).
'use strict';

(() => {
  const VERSION = document.body.dataset.version || 'dev';
  const SESSION_KEY = 'hookd.console.session';
  const POLL_MS = 2500;

  const EVENTS = [
    ['DEPLOYMENT_STARTED', 'Started', 'A deployment began'],
    ['DEPLOYMENT_SUCCESSFUL', 'Successful', 'A deployment finished'],
    ['DEPLOYMENT_FAILURE', 'Failed', 'A deployment failed'],
    ['DEPLOYMENT_CANCELLED', 'Cancelled', 'A deployment was cancelled'],
  ];
  const EVENT_LABEL = Object.fromEntries(EVENTS.map(([v, l]) => [v, l]));
  const ENVS = [
    ['PRODUCTION', 'Production'],
    ['STAGING', 'Staging'],
    ['DEVELOPMENT', 'Development'],
    ['PREVIEW', 'Preview'],
  ];
  const KINDS = [
    ['STANDARD', 'Standard', "Qovery's JSON envelope, signed with your secret"],
    ['SLACK', 'Slack', 'A formatted message for a Slack incoming webhook'],
  ];
  const KIND_LABEL = { STANDARD: 'Standard', SLACK: 'Slack' };

  const main = document.getElementById('main');
  const topbar = document.getElementById('topbar');
  const orgLabel = document.getElementById('org-label');
  const toasts = document.getElementById('toasts');

  // ---------- session ----------

  function session() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY));
      return s && s.token && s.org ? s : null;
    } catch {
      return null;
    }
  }

  // A sign-out asked for leaves the page; credentials refused mid-session
  // keep it, so signing in again comes back to it.
  function signOut(message) {
    sessionStorage.removeItem(SESSION_KEY);
    signInMessage = message || '';
    if (!message && location.hash && location.hash !== '#/') location.hash = '#/';
    else route();
  }
  let signInMessage = '';

  // A JWT is three dot-separated parts; anything else is an API token.
  function authorization(token) {
    let t = token.trim();
    const m = /^(token|bearer)\s+(.+)$/i.exec(t);
    if (m) t = m[2].trim();
    return (t.split('.').length === 3 ? 'Bearer ' : 'Token ') + t;
  }

  // ---------- API ----------

  class APIError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      const m = /^([a-z_]+): ([\s\S]*)$/.exec(detail || '');
      if (m) {
        this.field = m[1];
        this.fieldMessage = m[2];
      }
    }
  }

  // send makes one request to the API and returns its JSON and its ETag
  // (the version If-Match names). opts.creds are credentials to try
  // instead of the session's; opts.ifMatch makes a change conditional.
  async function send(method, path, body, opts = {}) {
    const s = opts.creds || session();
    if (!s) throw new APIError(401, 'signed out');
    const req = { method, headers: { Authorization: authorization(s.token), Accept: 'application/json' } };
    if (body !== undefined) {
      req.headers['Content-Type'] = 'application/json';
      req.body = JSON.stringify(body);
    }
    if (opts.ifMatch) req.headers['If-Match'] = opts.ifMatch;
    let resp;
    try {
      resp = await fetch('/organization/' + encodeURIComponent(s.org) + path, req);
    } catch (e) {
      throw new APIError(0, 'hookd could not be reached (' + e.message + ')');
    }
    const text = await resp.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!resp.ok) {
      const err = new APIError(resp.status, (data && data.detail) || resp.statusText || 'HTTP ' + resp.status);
      if (!opts.creds && resp.status === 401) signOut('hookd no longer accepts these credentials. Sign in again.');
      throw err;
    }
    return { data, etag: resp.headers.get('ETag') || '' };
  }

  async function api(method, path, body, creds, ifMatch) {
    return (await send(method, path, body, { creds, ifMatch })).data;
  }

  const hooks = '/webhook';
  const hookPath = (id) => hooks + '/' + encodeURIComponent(id);

  // The full object an edit sends back: PUT replaces every field, and an
  // absent target_secret or enabled keeps what is stored when the edit
  // commits (so an edit never undoes hookd disabling the webhook meanwhile).
  function editable(w) {
    return {
      kind: w.kind,
      target_url: w.target_url,
      description: w.description || '',
      events: w.events || [],
      project_names_filter: w.project_names_filter || [],
      environment_types_filter: w.environment_types_filter || [],
    };
  }

  // ---------- DOM ----------

  const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'textContent', 'htmlFor', 'open', 'indeterminate']);

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    append(el, kids);
    return el;
  }

  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  const ICONS = {
    plus: 'M12 5v14M5 12h14',
    edit: 'M17 3a2.85 2.85 0 1 1 4 4L7.5 20.5 2 22l1.5-5.5Z',
    trash: 'M3 6h18M8 6V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2m3 0v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V6M10 11v6M14 11v6',
    activity: 'M22 12h-4l-3 9L9 3l-3 9H2',
    send: 'M22 2 11 13M22 2l-7 20-4-9-9-4Z',
    retry: 'M23 4v6h-6M20.49 15a9 9 0 1 1-2.12-9.36L23 10',
    back: 'M19 12H5M12 19l-7-7 7-7',
    x: 'M18 6 6 18M6 6l12 12',
    copy: 'M9 9h13v13H9zM5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1',
    lock: 'M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4',
    alert: 'M12 9v4M12 17h.01M10.29 3.86 1.82 18a2 2 0 0 0 1.71 3h16.94a2 2 0 0 0 1.71-3L13.71 3.86a2 2 0 0 0-3.42 0z',
    search: 'M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16zM21 21l-4.35-4.35',
    link: 'M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71',
    inbox: 'M22 12h-6l-2 3h-4l-2-3H2M5.45 5.11 2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.45-6.89A2 2 0 0 0 16.76 4H7.24a2 2 0 0 0-1.79 1.11z',
    chevron: 'M9 18l6-6-6-6',
  };

  function icon(name, cls) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', ICONS[name]);
    svg.append(p);
    return svg;
  }

  function button(label, opts = {}) {
    return h(
      'button',
      {
        type: opts.type || 'button',
        class: 'btn ' + (opts.class || 'btn-secondary'),
        onclick: opts.onclick,
        disabled: opts.disabled,
        title: opts.title,
        'aria-label': opts.ariaLabel,
        id: opts.id,
        dataset: opts.dataset,
      },
      opts.icon ? icon(opts.icon) : null,
      opts.iconOnly ? null : h('span', null, label),
    );
  }

  function link(label, href, opts = {}) {
    return h('a', { href, class: opts.class || 'btn btn-secondary', title: opts.title, 'aria-label': opts.ariaLabel, id: opts.id },
      opts.icon ? icon(opts.icon) : null, opts.iconOnly ? null : h('span', null, label));
  }

  function toast(message, kind = 'ok') {
    const t = h('div', { class: 'toast toast-' + kind }, message);
    toasts.append(t);
    setTimeout(() => t.classList.add('toast-out'), 3800);
    setTimeout(() => t.remove(), 4200);
  }

  function spinner() {
    return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', null, 'Loading…'));
  }

  function errorBox(err, retry) {
    return h('div', { class: 'card state state-error', role: 'alert' },
      icon('alert', 'state-icon'),
      h('h2', null, 'Something went wrong'),
      h('p', { class: 'muted' }, err.message),
      retry ? button('Try again', { onclick: retry }) : null);
  }

  // ---------- formatting ----------

  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

  function ago(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return '';
    const s = Math.round((t - Date.now()) / 1000);
    const a = Math.abs(s);
    if (a < 45) return 'just now';
    if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
    if (a < 86400) return rtf.format(Math.round(s / 3600), 'hour');
    if (a < 86400 * 30) return rtf.format(Math.round(s / 86400), 'day');
    return new Date(t).toLocaleDateString();
  }

  function absolute(iso) {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? '' : dtf.format(new Date(t));
  }

  // A <time> that refreshTimes() keeps current.
  function timeAgo(iso, prefix = '') {
    return h('time', { datetime: iso, title: absolute(iso), dataset: { ago: prefix } }, prefix + ago(iso));
  }

  function refreshTimes(root = main) {
    for (const el of root.querySelectorAll('time[data-ago]')) el.textContent = el.dataset.ago + ago(el.dateTime);
  }

  function shortURL(u, max = 64) {
    const s = u.replace(/^https?:\/\//i, '');
    if (s.length <= max) return s;
    const tail = Math.floor(max / 3);
    return s.slice(0, max - tail - 1) + '…' + s.slice(-tail);
  }

  // Indenting gives every line its depth, so pretty-printing grows a
  // deeply nested body with the square of its depth: a target's 8 KB of
  // brackets becomes 32 MB, seconds of layout (and 20 KB would pass a
  // string's longest length on its way). A body whose indentation would
  // pass 1 MiB and four times its own size is shown as it came, counted
  // before any of it is built.
  const PRETTY_MAX = 1 << 20;

  function pretty(value) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    let parsed = value;
    try {
      if (typeof value === 'string') parsed = JSON.parse(value);
      const limit = Math.max(PRETTY_MAX, 4 * text.length);
      return indentation(parsed, limit) > limit ? text : JSON.stringify(parsed, null, 2);
    } catch {
      return text;
    }
  }

  // indentation counts the spaces JSON.stringify(value, null, 2) would
  // indent with, stopping once past limit: each member of an array or
  // object is on a line indented by its depth, and so is the bracket
  // that closes it. A stack, not recursion: the depth is the body's.
  function indentation(value, limit) {
    let total = 0;
    const stack = [[value, 0]];
    while (stack.length > 0 && total <= limit) {
      const [v, depth] = stack.pop();
      if (v === null || typeof v !== 'object') continue;
      const members = Array.isArray(v) ? v : Object.values(v);
      if (members.length === 0) continue;
      total += 2 * (depth + 1) * members.length + 2 * depth;
      for (const m of members) stack.push([m, depth + 1]);
    }
    return total;
  }

  // JSON with token classes, built as DOM (never as HTML). The text may
  // be anything a target answered, so no token may fail after scanning
  // far: a string runs to its closing quote or, unclosed, to the end.
  // Were it made to close, an unclosed '"\"\"\"…' would be scanned to
  // its end from each of its escaped quotes: 64 KiB froze the tab 3 s.
  function codeBlock(text, label) {
    const pre = h('pre', { class: 'code', tabindex: '0', 'aria-label': label });
    const re = /("(?:[^\\"]|\\[\s\S])*"?)(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let last = 0;
    for (let m; (m = re.exec(text));) {
      if (m.index > last) pre.append(text.slice(last, m.index));
      if (m[1] && m[2]) pre.append(h('span', { class: 'tk-key' }, m[1]), m[2]);
      else if (m[1]) pre.append(h('span', { class: 'tk-str' }, m[1]));
      else if (m[3]) pre.append(h('span', { class: 'tk-lit' }, m[3]));
      else pre.append(h('span', { class: 'tk-num' }, m[4]));
      last = re.lastIndex;
    }
    pre.append(text.slice(last));
    return pre;
  }

  // navigator.clipboard exists in a secure context only (HTTPS, or
  // localhost): a console served over HTTP on a private network copies
  // the older way.
  async function writeClipboard(text) {
    if (navigator.clipboard) return navigator.clipboard.writeText(text);
    const prev = document.activeElement;
    const ta = h('textarea', { class: 'sr-only', readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    if (prev) prev.focus();
    if (!ok) throw new Error('copy refused');
  }

  function copyButton(getText, what) {
    return button('Copy', {
      class: 'btn-ghost btn-sm',
      icon: 'copy',
      ariaLabel: 'Copy ' + what,
      onclick: async () => {
        try {
          await writeClipboard(getText());
          toast('Copied ' + what);
        } catch {
          toast('Copying is not allowed here', 'error');
        }
      },
    });
  }

  const isSuccess = (a) => a.target_response_status_code >= 200 && a.target_response_status_code < 300;

  function outcomePill(a) {
    if (isSuccess(a)) return h('span', { class: 'pill pill-ok' }, h('span', { class: 'dot' }), 'Success');
    return h('span', { class: 'pill pill-bad', title: a.error || '' }, h('span', { class: 'dot' }), 'Failure');
  }

  function statusCode(a) {
    const c = a.target_response_status_code;
    if (!c) return h('span', { class: 'code-badge code-none', title: a.error || 'No answer' }, '—');
    const cls = c < 300 ? 'code-2xx' : c < 400 ? 'code-3xx' : c < 500 ? 'code-4xx' : 'code-5xx';
    return h('span', { class: 'code-badge ' + cls }, String(c));
  }

  function duration(ms) {
    if (ms === undefined || ms === null) return '—';
    return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  }

  // ---------- health ----------

  const percent = (r) => (r === null || r === undefined ? '—' : (Math.round(r * 1000) / 10) + '%');
  const millis = (v) => (v === null || v === undefined ? '—' : duration(v < 10 ? Math.round(v * 10) / 10 : Math.round(v)));
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);
  const hourFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

  // What one bar of a chart stands for, as its tooltip says it. A day's
  // bar is the 24 hours before the next one (the last ends now), not a
  // calendar day: it says when it starts and ends.
  function bucketTitle(b, daily) {
    const start = new Date(b.start);
    const when = daily ? dayFmt.formatRange(start, new Date(start.getTime() + 86400e3))
      : hourFmt.format(start) + '–' + hourFmt.format(new Date(start.getTime() + 3600e3));
    if (!b.attempts) return when + ': no attempts';
    return when + ': ' + plural(b.attempts, 'attempt', 'attempts') + ', ' + b.failures + ' failed';
  }

  // An inline SVG bar chart of a window's buckets: each bar is the
  // bucket's attempts, its failed part on top in red. Hovering a bar
  // shows its <title>. No library: a few rects.
  function healthChart(win, opts = {}) {
    const NS = 'http://www.w3.org/2000/svg';
    const mk = (tag, attrs) => {
      const el = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      return el;
    };
    const W = 10;
    const H = opts.small ? 24 : 56;
    const buckets = win.buckets || [];
    const max = Math.max(1, ...buckets.map((b) => b.attempts));
    const svg = mk('svg', {
      viewBox: '0 0 ' + buckets.length * W + ' ' + H, preserveAspectRatio: 'none', role: 'img',
      class: 'chart' + (opts.small ? ' chart-sm' : ''), 'aria-label': opts.label || '',
    });
    if (opts.id) svg.id = opts.id;
    buckets.forEach((b, i) => {
      const g = mk('g', { class: 'bar', 'data-start': b.start, 'data-attempts': b.attempts, 'data-failures': b.failures });
      const title = mk('title', {});
      title.textContent = bucketTitle(b, !!opts.daily);
      g.append(title, mk('rect', { class: 'bar-hit', x: i * W, y: 0, width: W, height: H }));
      if (!b.attempts) {
        g.append(mk('rect', { class: 'bar-empty', x: i * W + 1, y: H - 1, width: W - 2, height: 1 }));
      } else {
        const hBad = (b.failures / max) * (H - 2);
        const hOk = ((b.attempts - b.failures) / max) * (H - 2);
        if (hOk) g.append(mk('rect', { class: 'bar-ok', x: i * W + 1, y: H - hOk, width: W - 2, height: hOk }));
        if (hBad) g.append(mk('rect', { class: 'bar-bad', x: i * W + 1, y: H - hOk - hBad, width: W - 2, height: hBad }));
      }
      svg.append(g);
    });
    return svg;
  }

  const sinceFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

  function failingPill(w) {
    if (!w.failing_since) return null;
    const t = Date.parse(w.failing_since);
    return h('span', { class: 'pill pill-bad failing', title: 'No attempt succeeded since ' + absolute(w.failing_since) + ' (' + ago(w.failing_since) + ')' },
      h('span', { class: 'dot' }), 'Failing since ', h('time', { datetime: w.failing_since }, sinceFmt.format(new Date(t))));
  }

  // The rotation grace: until previous_secret_expires_at, each delivery
  // is signed with the new secret and with the previous one.
  function graceNote(w) {
    if (!w.previous_secret_expires_at) return null;
    const end = w.previous_secret_expires_at;
    return h('p', { class: 'grace-note', role: 'note', id: 'grace-note' }, icon('lock'),
      h('span', null, h('strong', null, 'Secret rotation: '),
        'each delivery carries two signatures, with the new secret and with the previous one, until ',
        h('time', { datetime: end, id: 'grace-end' }, absolute(end)), ' (', timeAgo(end), '). Receivers can switch to the new secret until then.'));
  }

  function slackUnescape(s) {
    return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  }

  // Project and environment of an attempt: from Qovery's envelope, or from
  // the fields of a Slack message.
  function subject(a) {
    const r = a.request || {};
    if (r.payload && typeof r.payload === 'object') {
      const p = r.payload;
      return {
        project: p.project && p.project.name,
        environment: p.environment && p.environment.name,
        mode: p.environment && p.environment.mode,
      };
    }
    const out = {};
    for (const b of r.blocks || []) {
      for (const f of b.fields || []) {
        const m = /^\*(Project|Environment)\*\n([\s\S]*)$/.exec(f.text || '');
        if (m && m[1] === 'Project') out.project = slackUnescape(m[2]);
        if (m && m[1] === 'Environment') out.environment = slackUnescape(m[2]);
      }
    }
    if (!out.project && typeof r.text === 'string') out.summary = r.text;
    return out;
  }

  // The headers hookd sends with a request. The API does not store them,
  // so they are rebuilt from the attempt; secrets are never shown.
  function sentHeaders(a, w) {
    const rows = [
      ['Content-Type', 'application/json'],
      ['User-Agent', 'hookd/' + VERSION],
    ];
    if (a.kind === 'STANDARD') {
      const r = a.request || {};
      rows.push(['webhook-id', r.payload_id || '']);
      const t = Date.parse(a.created_at);
      rows.push(['webhook-timestamp', Number.isNaN(t) ? '' : String(Math.floor(t / 1000))]);
      if (w && w.target_secret_set) {
        // Like the rest, what hookd sends now: during a rotation grace, a
        // signature with the previous secret too.
        const grace = !!w.previous_secret_expires_at;
        rows.push(['webhook-signature', grace ? 'v1,•••• v1,••••' : 'v1,••••'], ['Qovery-Signature', '••••'], ['Qovery-Secret', '••••']);
      }
    }
    return rows;
  }

  // ---------- router ----------

  let generation = 0;
  let stops = [];

  function onLeave(fn) {
    stops.push(fn);
  }

  function page(title, ...kids) {
    document.title = title + ' · hookd';
    main.replaceChildren(...kids.flat().filter(Boolean));
  }

  function route() {
    // A dialog belongs to the page being left; left open, modal, it would
    // keep the next one (the sign-in form too) out of reach.
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    for (const f of stops) f();
    stops = [];
    generation++;
    const s = session();
    topbar.hidden = !s;
    document.body.classList.toggle('signed-in', !!s);
    if (!s) return renderSignIn();
    orgLabel.textContent = 'Org ' + s.org.slice(0, 8);
    orgLabel.title = 'Organization ' + s.org;
    const [path, query] = (location.hash.replace(/^#/, '') || '/').split('?');
    let m;
    if (path === '/') return renderList();
    if (path === '/new') return renderForm(null);
    if (path === '/audit') return renderAudit();
    if (path === '/sources') return renderSources();
    if ((m = /^\/webhooks\/([\w-]+)\/edit$/.exec(path))) return renderForm(m[1]);
    if ((m = /^\/webhooks\/([\w-]+)\/deliveries$/.exec(path))) return renderDeliveries(m[1], new URLSearchParams(query || ''));
    if ((m = /^\/webhooks\/([\w-]+)\/attempts\/([\w-]+)$/.exec(path))) return renderDetail(m[1], m[2]);
    if ((m = /^\/webhooks\/([\w-]+)$/.exec(path))) return renderLog(m[1]);
    page('Not found', h('div', { class: 'card state' }, h('h1', null, 'Page not found'), link('Back to webhooks', '#/', { class: 'btn btn-primary' })));
  }

  // Whether the view that started some async work is still on screen.
  function current() {
    const g = generation;
    return () => g === generation;
  }

  function focusMain() {
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  // ---------- sign in ----------

  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function renderSignIn() {
    const tokenIn = h('input', { id: 'signin-token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'hkd_… or eyJhbGciOi…', 'aria-describedby': 'signin-token-hint' });
    const orgIn = h('input', { id: 'signin-org', name: 'org', type: 'text', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: '3fa85f64-5717-4562-b3fc-2c963f66afa6', 'aria-describedby': 'signin-org-error' });
    const orgErr = h('p', { class: 'field-error', id: 'signin-org-error', hidden: true });
    const alert = h('div', { class: 'alert alert-error', role: 'alert', id: 'signin-error', hidden: !signInMessage }, signInMessage);
    signInMessage = '';
    const submit = button('Sign in', { type: 'submit', class: 'btn-primary btn-block', id: 'signin-submit' });
    const show = h('button', { type: 'button', class: 'input-addon', 'aria-pressed': 'false', 'aria-label': 'Show token' }, 'Show');
    show.addEventListener('click', () => {
      const visible = tokenIn.type === 'text';
      tokenIn.type = visible ? 'password' : 'text';
      show.textContent = visible ? 'Show' : 'Hide';
      show.setAttribute('aria-pressed', String(!visible));
    });

    const form = h('form', { class: 'signin-form', novalidate: true },
      h('div', { class: 'field' },
        h('label', { for: 'signin-token' }, 'API token or JWT'),
        h('div', { class: 'input-group' }, tokenIn, show),
        h('p', { class: 'hint', id: 'signin-token-hint' }, 'Create one with ', h('code', null, 'hookd token create'), '.')),
      h('div', { class: 'field' },
        h('label', { for: 'signin-org' }, 'Organization ID'),
        orgIn, orgErr),
      alert,
      submit);

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      alert.hidden = true;
      orgErr.hidden = true;
      orgIn.removeAttribute('aria-invalid');
      const creds = { token: tokenIn.value.trim(), org: orgIn.value.trim().toLowerCase() };
      if (!creds.token) {
        alert.textContent = 'Paste an API token or a JWT.';
        alert.hidden = false;
        tokenIn.focus();
        return;
      }
      if (!UUID_RE.test(creds.org)) {
        orgErr.textContent = 'An organization ID is a UUID, such as 3fa85f64-5717-4562-b3fc-2c963f66afa6.';
        orgErr.hidden = false;
        orgIn.setAttribute('aria-invalid', 'true');
        orgIn.focus();
        return;
      }
      submit.disabled = true;
      submit.classList.add('is-busy');
      try {
        await api('GET', hooks, undefined, creds);
        sessionStorage.setItem(SESSION_KEY, JSON.stringify(creds));
        route(); // the page a link or a lapsed session asked for
      } catch (err) {
        alert.textContent = err.status === 401 ? 'hookd does not accept this token. Check it and try again.'
          : err.status === 403 ? 'This token does not give access to organization ' + creds.org + '.'
            : err.message;
        alert.hidden = false;
        submit.disabled = false;
        submit.classList.remove('is-busy');
      }
    });

    page('Sign in', h('div', { class: 'signin' },
      h('div', { class: 'signin-card card' },
        h('div', { class: 'signin-brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, icon('link')), h('span', null, 'hookd')),
        h('h1', null, 'Sign in to the console'),
        h('p', { class: 'muted' }, 'Paste an API token (or a JWT) and the organization it belongs to. They stay in this browser tab and are forgotten when you sign out or close it.'),
        form),
      h('p', { class: 'signin-foot muted' }, 'hookd ', VERSION, ' · ', h('a', { href: '/openapi.yaml' }, 'API reference'))));
    tokenIn.focus();
  }

  // ---------- webhook list ----------

  function eventsSummary(events) {
    if (!events || !events.length) return 'No event';
    if (events.length === EVENTS.length) return 'All events';
    return EVENTS.filter(([v]) => events.includes(v)).map(([, l]) => l).join(' · ');
  }

  function kindBadge(kind) {
    return h('span', { class: 'badge badge-' + String(kind).toLowerCase() }, KIND_LABEL[kind] || kind);
  }

  function enabledSwitch(w, onChange) {
    const sw = h('button', {
      type: 'button', role: 'switch', class: 'switch', 'aria-checked': String(w.enabled),
      'aria-label': 'Enabled: ' + w.target_url, title: w.enabled ? 'Enabled — click to disable' : 'Disabled — click to enable',
      dataset: { action: 'toggle', id: w.id },
    }, h('span', { class: 'switch-thumb', 'aria-hidden': 'true' }));
    sw.addEventListener('click', () => onChange(sw));
    return sw;
  }

  // setEnabled enables or disables webhook id and returns it as saved.
  // PUT replaces every field: they are sent as stored now, not as a page
  // read them, and only if they are still so when the PUT commits
  // (If-Match), or the change would undo an edit made in between. It
  // changes one field whatever the others hold, so an edit in between
  // only means reading them again.
  async function setEnabled(id, next) {
    for (let tries = 1; ; tries++) {
      const current = await send('GET', hookPath(id));
      try {
        return (await send('PUT', hookPath(id), { ...editable(current.data), enabled: next }, { ifMatch: current.etag })).data;
      } catch (err) {
        if (err.status !== 412) throw err;
        if (tries === 3) throw new APIError(412, 'the webhook kept changing while this was saved; try again');
      }
    }
  }

  async function toggle(w, sw, after) {
    const next = !w.enabled;
    sw.disabled = true;
    sw.setAttribute('aria-checked', String(next));
    try {
      Object.assign(w, await setEnabled(w.id, next));
      toast(next ? 'Webhook enabled' : 'Webhook disabled');
    } catch (err) {
      sw.setAttribute('aria-checked', String(w.enabled));
      if (err.status !== 401) toast('Could not save: ' + err.message, 'error');
    } finally {
      sw.disabled = false;
      sw.title = w.enabled ? 'Enabled — click to disable' : 'Disabled — click to enable';
      if (after) after();
    }
  }

  // deleteShown deletes what path names if it still is the version a
  // page showed (shown.updated_at: every edit, hookd's own disable too,
  // moves it). The API's ETag hashes more than a list carries, so it is
  // read just before and sent as If-Match: an edit committed in between
  // is refused too (412). It returns null once deleted, or what path
  // holds now if it changed, for the person to confirm again against:
  // a confirmation names one version, never whatever is stored by then.
  async function deleteShown(path, shown) {
    let now = await send('GET', path);
    if (now.data.updated_at === shown.updated_at) {
      try {
        await send('DELETE', path, undefined, { ifMatch: now.etag });
        return null;
      } catch (err) {
        if (err.status !== 412) throw err;
        now = await send('GET', path);
      }
    }
    return now.data;
  }

  function confirmDelete(listed, done) {
    let w = { ...listed }; // the version the dialog describes
    let stale = false; // the page shows an older one: read it again on close
    const input = h('input', { id: 'delete-confirm', type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'delete-confirm-help' });
    const del = button('Delete webhook', { class: 'btn-danger', icon: 'trash', disabled: true, id: 'delete-submit', type: 'submit' });
    const err = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
    const changed = h('div', { class: 'alert alert-warn', role: 'alert', id: 'delete-changed', hidden: true });
    const url = h('code', null, w.target_url);
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'delete-title' });
    const close = () => {
      dlg.close();
      dlg.remove();
    };
    input.addEventListener('input', () => {
      del.disabled = input.value.trim() !== w.target_url;
    });
    const form = h('form', { method: 'dialog', novalidate: true },
      h('h2', { id: 'delete-title' }, 'Delete this webhook?'),
      h('p', { class: 'muted' }, 'hookd stops sending events to it and removes its delivery log. This cannot be undone.'),
      changed,
      h('label', { for: 'delete-confirm', id: 'delete-confirm-help' }, 'Type the target URL to confirm:'),
      h('p', { class: 'confirm-url' }, url),
      input, err,
      h('div', { class: 'dialog-actions' }, button('Cancel', { onclick: close }), del));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (input.value.trim() !== w.target_url) return;
      del.disabled = true;
      err.hidden = true;
      try {
        const now = await deleteShown(hookPath(w.id), w);
        if (now) {
          w = now;
          stale = true;
          changed.replaceChildren(h('strong', null, 'Not deleted: this webhook changed since the page showed it. '),
            'It now sends to ', h('code', null, w.target_url), ' and is ', w.enabled ? 'enabled' : 'disabled',
            '. Type its URL again to delete it as it is now, or cancel.');
          changed.hidden = false;
          url.textContent = w.target_url;
          input.value = '';
          input.focus();
          return;
        }
        stale = false;
        close();
        toast('Webhook deleted');
        done();
      } catch (ex) {
        err.textContent = ex.message;
        err.hidden = false;
        del.disabled = false;
      }
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (stale) done();
    });
    dlg.append(form);
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  }

  // A row's health: the last 24 hours as a small chart and a rate.
  function rowHealth(w, st) {
    const d = st.last_24_hours;
    return [
      healthChart(d, { small: true, label: 'Attempts per hour over the last 24 hours for ' + w.target_url }),
      h('span', { class: 'wh-rate' + (!d.attempts ? ' muted' : d.failures ? ' text-bad' : ''), title: plural(d.attempts, 'attempt', 'attempts') + ' in 24 hours, ' + d.failures + ' failed' },
        d.attempts ? percent(d.success_rate) : 'No traffic'),
    ];
  }

  // changed is called after the row's switch saved (or failed to).
  function webhookRow(w, refresh, changed) {
    const row = h('li', { class: 'wh' + (w.enabled ? '' : ' wh-off'), dataset: { id: w.id } });
    let health = null;
    let healthErr = '';
    const healthCell = () => h('div', { class: 'wh-health', dataset: { health: w.id }, title: healthErr || null },
      health ? rowHealth(w, health) : h('span', { class: 'muted-2' }, healthErr ? '—' : '…'));
    row.setHealth = (st) => {
      health = st;
      row.querySelector('.wh-health').replaceWith(healthCell());
    };
    // A refused request (429 past the credential's rate limit) says why,
    // rather than leaving the row loading.
    row.setHealthError = (err) => {
      healthErr = 'Could not load the stats: ' + err.message;
      row.querySelector('.wh-health').replaceWith(healthCell());
    };
    const render = () => {
      row.className = 'wh' + (w.enabled ? '' : ' wh-off');
      row.replaceChildren();
      append(row, [
        h('div', { class: 'wh-main' },
          h('a', { class: 'wh-url', href: '#/webhooks/' + w.id, title: w.target_url }, shortURL(w.target_url)),
          h('div', { class: 'wh-meta' },
            kindBadge(w.kind),
            failingPill(w),
            w.description ? h('span', { class: 'wh-desc', title: w.description }, w.description) : h('span', { class: 'wh-desc muted-2' }, 'No description'))),
        healthCell(),
        h('div', { class: 'wh-events' }, h('span', { class: 'label-sm' }, 'Events'), h('span', null, eventsSummary(w.events))),
        h('div', { class: 'wh-updated' }, h('span', { class: 'label-sm' }, 'Updated'), timeAgo(w.updated_at)),
        h('div', { class: 'wh-toggle' }, enabledSwitch(w, (sw) => toggle(w, sw, () => { render(); changed(); }))),
        h('div', { class: 'wh-actions' },
          link('Deliveries', '#/webhooks/' + w.id, { class: 'btn btn-ghost btn-icon', icon: 'activity', iconOnly: true, title: 'Delivery log', ariaLabel: 'Delivery log for ' + w.target_url }),
          w.secrets_unreadable ? null : link('Edit', '#/webhooks/' + w.id + '/edit', { class: 'btn btn-ghost btn-icon', icon: 'edit', iconOnly: true, title: 'Edit', ariaLabel: 'Edit ' + w.target_url }),
          button('Delete', { class: 'btn-ghost btn-icon btn-icon-danger', icon: 'trash', iconOnly: true, title: 'Delete', ariaLabel: 'Delete ' + w.target_url, dataset: { action: 'delete' }, onclick: () => confirmDelete(w, refresh) })),
        w.disabled_reason && !w.enabled
          ? h('p', { class: 'wh-reason', role: 'note' }, icon('alert'), h('span', null, h('strong', null, 'Disabled by hookd: '), w.disabled_reason))
          : null,
        unreadableNote(w),
      ]);
    };
    render();
    return row;
  }

  async function renderList() {
    const alive = current();
    page('Webhooks', spinner());
    focusMain();
    let list;
    try {
      list = (await api('GET', hooks)).results || [];
    } catch (err) {
      if (alive() && err.status !== 401) page('Webhooks', errorBox(err, route));
      return;
    }
    if (!alive()) return;
    const add = link('Add webhook', '#/new', { class: 'btn btn-primary', icon: 'plus', id: 'add-webhook' });
    if (!list.length) {
      page('Webhooks',
        h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Webhooks'), h('p', { class: 'muted' }, 'Send deployment events to your own endpoints or to Slack.'))),
        h('div', { class: 'card state', id: 'empty-state' },
          h('span', { class: 'state-art', 'aria-hidden': 'true' }, icon('link')),
          h('h2', null, 'No webhook yet'),
          h('p', { class: 'muted' }, 'Add a webhook and hookd will send it every matching deployment event, with retries and a delivery log.'),
          link('Add webhook', '#/new', { class: 'btn btn-primary', icon: 'plus', id: 'empty-add' })));
      return;
    }
    const ul = h('ul', { class: 'wh-list card', id: 'webhook-list' });
    const none = h('p', { class: 'card state state-sm muted', hidden: true });
    const count = h('p', { class: 'muted' });
    const search = h('input', { type: 'search', id: 'webhook-search', placeholder: 'Filter by URL or description', 'aria-label': 'Filter webhooks' });
    // The organization at a glance: failing webhooks first, the longest
    // failing on top; the others keep the API's order.
    const order = new Map(list.map((w, i) => [w.id, i]));
    list.sort((a, b) => (a.failing_since ? 0 : 1) - (b.failing_since ? 0 : 1)
      || (a.failing_since && b.failing_since ? Date.parse(a.failing_since) - Date.parse(b.failing_since) : 0)
      || order.get(a.id) - order.get(b.id));
    const failing = list.filter((w) => w.failing_since).length;
    const rows = list.map((w) => [w, webhookRow(w, route, () => apply())]);
    for (const [w, row] of rows) {
      api('GET', hookPath(w.id) + '/stats').then((st) => { if (alive()) row.setHealth(st); }, (err) => { if (alive() && err.status !== 401) row.setHealthError(err); });
    }
    const apply = () => {
      const q = search.value.trim().toLowerCase();
      let shown = 0;
      for (const [w, row] of rows) {
        const hit = !q || w.target_url.toLowerCase().includes(q) || (w.description || '').toLowerCase().includes(q);
        row.hidden = !hit;
        if (hit) shown++;
      }
      none.hidden = shown > 0;
      none.textContent = 'No webhook matches “' + search.value.trim() + '”.';
      const enabled = list.filter((w) => w.enabled).length;
      count.textContent = q ? shown + ' of ' + list.length + ' webhooks'
        : list.length + (list.length === 1 ? ' webhook' : ' webhooks') + ' · ' + enabled + ' enabled' + (failing ? ' · ' + failing + ' failing' : '');
    };
    search.addEventListener('input', apply);
    append(ul, rows.map(([, r]) => r));
    apply();
    page('Webhooks',
      h('div', { class: 'page-head' },
        h('div', null, h('h1', null, 'Webhooks'), count),
        h('div', { class: 'page-actions' }, h('div', { class: 'search' }, icon('search'), search), add)),
      ul, none);
    const tick = setInterval(() => refreshTimes(), 30000);
    onLeave(() => clearInterval(tick));
  }

  // ---------- create / edit ----------

  function tagsInput(id, values, describedBy) {
    const tags = [...values];
    const box = h('div', { class: 'tags' });
    const input = h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'api-*', 'aria-describedby': describedBy });
    const list = h('ul', { class: 'tags-list', 'aria-label': 'Project name patterns' });
    const render = () => {
      list.replaceChildren(...tags.map((t, i) => h('li', { class: 'tag' },
        h('span', null, t),
        h('button', { type: 'button', class: 'tag-x', 'aria-label': 'Remove ' + t, onclick: () => { tags.splice(i, 1); render(); input.focus(); } }, icon('x')))));
      input.placeholder = tags.length ? 'Add another…' : 'api-*';
    };
    const commit = () => {
      for (const part of input.value.split(',')) {
        const v = part.trim();
        if (v && !tags.some((t) => t.toLowerCase() === v.toLowerCase())) tags.push(v);
      }
      input.value = '';
      render();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ',') {
        e.preventDefault();
        commit();
      } else if (e.key === 'Backspace' && !input.value && tags.length) {
        tags.pop();
        render();
      }
    });
    // Cancelling keydown cancels the keypress that submits the form in a
    // browser, but an input method or an automated one may send that
    // keypress on its own: a tag's Enter must never submit.
    input.addEventListener('keypress', (e) => { if (e.key === 'Enter') e.preventDefault(); });
    input.addEventListener('blur', commit);
    box.addEventListener('click', (e) => { if (e.target === box) input.focus(); });
    box.append(list, input);
    render();
    const set = (values) => {
      tags.splice(0, tags.length, ...values);
      render();
    };
    return { el: box, input, values: () => { commit(); return [...tags]; }, set };
  }

  // An edit form saves with If-Match, the version it was opened on: a
  // save over an edit made elsewhere meanwhile is refused (412), never
  // silently undoing it. Reloading then takes each field as stored now,
  // except those the person changed, which keep what they typed.
  // read, mine and fresh are the fields as the form read them, as the
  // person left them, and as stored now; it returns the fields to show
  // and the names of those changed elsewhere.
  function rebase(read, mine, fresh) {
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    const fields = {};
    const elsewhere = [];
    for (const k of Object.keys(read)) {
      const changedHere = !same(mine[k], read[k]);
      fields[k] = changedHere ? mine[k] : fresh[k];
      if (!same(fresh[k], read[k])) elsewhere.push((FIELDS[k] || k) + (changedHere ? ' (yours kept)' : ''));
    }
    return { fields, elsewhere };
  }

  // conflictAlert fills box with what a 412 means, and a button that
  // reloads (reload returns the names of the fields changed elsewhere).
  function conflictAlert(box, what, reload) {
    const again = button('Reload ' + what + ', keeping my changes', { class: 'btn-secondary btn-sm', icon: 'retry', id: 'conflict-reload' });
    again.addEventListener('click', async () => {
      again.disabled = true;
      try {
        const elsewhere = await reload();
        box.className = 'alert alert-warn';
        box.replaceChildren(h('strong', null, 'Reloaded. '),
          elsewhere.length ? 'Changed meanwhile: ' + elsewhere.join(', ') + '. ' : '',
          'The form shows the ' + what + ' as stored now, with your changes on top: check them and save again.');
      } catch (err) {
        again.disabled = false;
        if (err.status !== 401) box.append(h('p', null, 'Could not reload: ' + err.message));
      }
    });
    box.className = 'alert alert-error';
    box.replaceChildren(h('strong', null, 'Not saved: this ' + what + ' changed since you opened it. '),
      'Someone (or hookd) changed it meanwhile, and saving would undo that. Reload it to see the change; what you typed stays.',
      h('div', null, again));
    box.hidden = false;
  }

  // The checked values, those already stored first in their stored order:
  // the audit trail (and Terraform) compare lists, so an edit that leaves
  // a list alone must not reorder it.
  function keepOrder(stored, checked) {
    const kept = (stored || []).filter((v) => checked.includes(v));
    return kept.concat(checked.filter((v) => !kept.includes(v)));
  }

  function field(name, label, control, opts = {}) {
    return h(opts.group ? 'fieldset' : 'div', { class: 'field', dataset: { field: name }, id: 'field-' + name },
      opts.group ? h('legend', null, label) : h('label', { for: opts.for || 'f-' + name }, label),
      opts.hint ? h('p', { class: 'hint', id: 'hint-' + name }, opts.hint) : null,
      control,
      h('p', { class: 'field-error', id: 'err-' + name, hidden: true }));
  }

  async function renderForm(id) {
    const alive = current();
    const editing = !!id;
    page(editing ? 'Edit webhook' : 'Add webhook', spinner());
    focusMain();
    let w = { kind: 'STANDARD', target_url: '', description: '', enabled: true, events: EVENTS.map(([v]) => v), project_names_filter: [], environment_types_filter: [], target_secret_set: false };
    let etag = ''; // the version the form shows: what a save may replace
    if (editing) {
      try {
        ({ data: w, etag } = await send('GET', hookPath(id)));
      } catch (err) {
        if (alive() && err.status !== 401) page('Edit webhook', errorBox(err, route));
        return;
      }
      if (!alive()) return;
    }

    const url = h('input', { id: 'f-target_url', name: 'target_url', type: 'text', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', value: w.target_url, placeholder: 'https://example.com/hooks/qovery', 'aria-describedby': 'err-target_url' });
    const kinds = h('div', { class: 'choices choices-2' }, KINDS.map(([v, l, d]) => h('label', { class: 'choice' },
      h('input', { type: 'radio', name: 'kind', value: v, checked: w.kind === v }),
      h('span', { class: 'choice-body' }, h('span', { class: 'choice-title' }, l), h('span', { class: 'choice-desc' }, d)))));
    const desc = h('textarea', { id: 'f-description', name: 'description', rows: '2', maxlength: '1024', placeholder: 'What this webhook is for', 'aria-describedby': 'err-description' });
    desc.value = w.description || '';
    const events = h('div', { class: 'choices choices-4' }, EVENTS.map(([v, l, d]) => h('label', { class: 'choice choice-check' },
      h('input', { type: 'checkbox', name: 'events', value: v, checked: (w.events || []).includes(v) }),
      h('span', { class: 'choice-body' }, h('span', { class: 'choice-title' }, l), h('span', { class: 'choice-desc' }, d)))));
    const tags = tagsInput('f-project_names_filter', w.project_names_filter || [], 'hint-project_names_filter err-project_names_filter');
    const envs = h('div', { class: 'checks' }, ENVS.map(([v, l]) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'environment_types_filter', value: v, checked: (w.environment_types_filter || []).includes(v) }),
      h('span', null, l))));
    const enabled = h('input', { type: 'checkbox', id: 'f-enabled', name: 'enabled', checked: w.enabled, role: 'switch' });

    // The secret is write-only: the form knows only whether one is set.
    let secretMode = 'keep';
    const secretIn = h('input', { id: 'f-target_secret', name: 'target_secret', type: 'password', autocomplete: 'new-password', spellcheck: 'false', placeholder: 'whsec_… or any string', 'aria-describedby': 'hint-target_secret err-target_secret' });
    const secretBox = h('div', { class: 'secret' });
    const renderSecret = () => {
      const kids = [];
      if (!w.target_secret_set || secretMode === 'replace') {
        kids.push(secretIn);
        if (w.target_secret_set) kids.push(button('Keep current secret', { class: 'btn-ghost btn-sm', onclick: () => { secretMode = 'keep'; secretIn.value = ''; renderSecret(); } }));
      } else if (secretMode === 'remove') {
        kids.push(h('span', { class: 'secret-state secret-remove', id: 'secret-state' }, icon('alert'), 'The secret will be removed when you save'),
          button('Undo', { class: 'btn-ghost btn-sm', onclick: () => { secretMode = 'keep'; renderSecret(); } }));
      } else {
        kids.push(h('span', { class: 'secret-state', id: 'secret-state' }, icon('lock'), 'Secret set'),
          button('Replace', { class: 'btn-secondary btn-sm', id: 'secret-replace', onclick: () => { secretMode = 'replace'; renderSecret(); secretIn.focus(); } }),
          button('Remove', { class: 'btn-ghost btn-sm btn-text-danger', id: 'secret-remove', onclick: () => { secretMode = 'remove'; renderSecret(); } }));
        if (w.previous_secret_expires_at) kids.push(graceNote(w));
      }
      secretBox.replaceChildren(...kids);
    };
    renderSecret();

    const formError = h('div', { class: 'alert alert-error', role: 'alert', id: 'form-error', hidden: true });
    const save = button(editing ? 'Save changes' : 'Create webhook', { type: 'submit', class: 'btn-primary', id: 'form-submit' });

    const form = h('form', { class: 'form card', novalidate: true, id: 'webhook-form' },
      h('section', { class: 'form-section' },
        h('div', { class: 'form-section-head' }, h('h2', null, 'Destination'), h('p', { class: 'muted' }, 'Where hookd sends events, and in which format.')),
        h('div', { class: 'form-section-body' },
          field('target_url', 'Target URL', url),
          field('kind', 'Kind', kinds, { group: true }),
          field('description', 'Description', desc))),
      h('section', { class: 'form-section' },
        h('div', { class: 'form-section-head' }, h('h2', null, 'Events'), h('p', { class: 'muted' }, 'Which deployment events, from which projects and environments.')),
        h('div', { class: 'form-section-body' },
          field('events', 'Event types', events, { group: true }),
          field('project_names_filter', 'Project names', tags.el, { for: 'f-project_names_filter', hint: h('span', null, 'Press Enter after each pattern. ', h('code', null, '*'), ' matches any characters; matching ignores case. Leave empty for every project.') }),
          field('environment_types_filter', 'Environment types', envs, { group: true, hint: 'Leave all unchecked for every environment.' }))),
      h('section', { class: 'form-section' },
        h('div', { class: 'form-section-head' }, h('h2', null, 'Security & status'), h('p', { class: 'muted' }, 'Signing, and whether hookd sends anything at all.')),
        h('div', { class: 'form-section-body' },
          field('target_secret', 'Signing secret', secretBox, { hint: 'Signs each Standard request (webhook-signature). Write-only: hookd never shows it again.' }),
          h('div', { class: 'field', dataset: { field: 'enabled' } },
            h('label', { class: 'check check-switch', for: 'f-enabled' }, enabled, h('span', null, h('strong', null, 'Enabled'), h('span', { class: 'muted' }, ' — send matching events to this webhook')))))),
      h('div', { class: 'form-foot' }, formError, h('div', { class: 'form-buttons' }, link('Cancel', editing ? '#/webhooks/' + id : '#/', { class: 'btn btn-secondary' }), save)));

    const clearErrors = () => {
      formError.hidden = true;
      for (const e of form.querySelectorAll('.field-error')) e.hidden = true;
      for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
      for (const e of form.querySelectorAll('.field.has-error')) e.classList.remove('has-error');
    };

    const clearField = (e) => {
      const f = e.target.closest('.field.has-error');
      if (!f) return;
      f.classList.remove('has-error');
      f.querySelector('.field-error').hidden = true;
      e.target.removeAttribute('aria-invalid');
    };
    form.addEventListener('input', clearField);
    form.addEventListener('change', clearField);

    // The fields as the controls say, in the API's shape. A description
    // is trimmed as typed, but one made elsewhere (a heredoc's final
    // newline) is kept as it is unless the person changed it; lists keep
    // their stored order (see keepOrder).
    const formFields = () => ({
      ...editable({
        kind: form.querySelector('input[name=kind]:checked')?.value || 'STANDARD',
        target_url: url.value.trim(),
        description: desc.value.trim() === (w.description || '').trim() ? w.description || '' : desc.value.trim(),
        events: keepOrder(w.events, [...form.querySelectorAll('input[name=events]:checked')].map((i) => i.value)),
        project_names_filter: tags.values(),
        environment_types_filter: keepOrder(w.environment_types_filter, [...form.querySelectorAll('input[name=environment_types_filter]:checked')].map((i) => i.value)),
      }),
      enabled: enabled.checked,
    });
    const storedFields = (x) => ({ ...editable(x), enabled: x.enabled, target_secret: x.target_secret_set });
    const fill = (f) => {
      url.value = f.target_url;
      for (const r of form.querySelectorAll('input[name=kind]')) r.checked = r.value === f.kind;
      desc.value = f.description;
      for (const c of form.querySelectorAll('input[name=events]')) c.checked = f.events.includes(c.value);
      tags.set(f.project_names_filter);
      for (const c of form.querySelectorAll('input[name=environment_types_filter]')) c.checked = f.environment_types_filter.includes(c.value);
      enabled.checked = f.enabled;
    };
    // After a 412: the webhook as stored now, the person's changes on top.
    const reload = async () => {
      const read = storedFields(w);
      const mine = { ...formFields(), target_secret: read.target_secret };
      const got = await send('GET', hookPath(id));
      const { fields, elsewhere } = rebase(read, mine, storedFields(got.data));
      w = got.data;
      etag = got.etag;
      fill(fields);
      renderSecret();
      urlLine.textContent = w.target_url;
      urlLine.title = w.target_url;
      return elsewhere;
    };

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors();
      const { enabled: on, ...body } = formFields();
      // Only a state the person changed is sent: one left as it was is
      // kept as stored when the edit commits.
      if (!editing || on !== w.enabled) body.enabled = on;
      if (secretMode === 'remove') body.target_secret = '';
      else if (secretIn.value !== '' && (!w.target_secret_set || secretMode === 'replace')) body.target_secret = secretIn.value;
      save.disabled = true;
      save.classList.add('is-busy');
      try {
        const saved = editing ? await api('PUT', hookPath(id), body, undefined, etag) : await api('POST', hooks, body);
        toast(editing ? 'Webhook saved' : 'Webhook created');
        location.hash = editing ? '#/webhooks/' + saved.id : '#/';
      } catch (err) {
        save.disabled = false;
        save.classList.remove('is-busy');
        if (err.status === 401) return;
        if (err.status === 412 && editing) {
          conflictAlert(formError, 'webhook', reload);
          formError.scrollIntoView({ block: 'center' });
          return;
        }
        const f = err.field && form.querySelector('[data-field="' + err.field + '"]');
        if (f) {
          f.classList.add('has-error');
          const msg = f.querySelector('.field-error');
          msg.textContent = err.fieldMessage.charAt(0).toUpperCase() + err.fieldMessage.slice(1);
          msg.hidden = false;
          const ctl = f.querySelector('input, textarea');
          if (ctl) {
            ctl.setAttribute('aria-invalid', 'true');
            ctl.focus();
          }
          f.scrollIntoView({ block: 'center' });
        } else {
          formError.className = 'alert alert-error';
          formError.textContent = err.message;
          formError.hidden = false;
        }
      }
    });

    const urlLine = h('p', { class: 'muted url-line', title: w.target_url }, w.target_url);
    page(editing ? 'Edit webhook' : 'Add webhook',
      link('Webhooks', '#/', { class: 'back', icon: 'back' }),
      h('div', { class: 'page-head' }, h('div', null,
        h('h1', null, editing ? 'Edit webhook' : 'Add webhook'),
        editing ? urlLine : h('p', { class: 'muted' }, 'hookd sends each matching deployment event to this URL, retrying until it answers 2xx.'))),
      form);
    url.focus();
  }

  // unreadableNote says why a webhook whose target URL and secret cannot
  // be decrypted shows none, and what can be done about it.
  function unreadableNote(w) {
    if (!w.secrets_unreadable) return null;
    return h('p', { class: 'wh-reason', role: 'note' }, icon('alert'), h('span', null, h('strong', null, 'Cannot be decrypted: '),
      'its target URL and secret were encrypted with a key this server no longer has, so nothing is sent to it. Ask your operator to add the key back to HOOKD_ENCRYPTION_KEY, or delete this webhook.'));
  }

  // ---------- delivery log ----------

  function webhookHeader(w, actions, eyebrow = 'Delivery log') {
    return h('div', { class: 'page-head page-head-webhook' },
      h('div', { class: 'head-text' },
        h('p', { class: 'eyebrow' }, eyebrow),
        h('h1', { class: 'url-title', title: w.target_url }, w.target_url),
        h('div', { class: 'wh-meta' },
          kindBadge(w.kind),
          h('span', { class: 'pill ' + (w.enabled ? 'pill-ok' : 'pill-off') }, h('span', { class: 'dot' }), w.enabled ? 'Enabled' : 'Disabled'),
          w.target_secret_set ? h('span', { class: 'meta-item' }, icon('lock'), w.previous_secret_expires_at ? 'Signed twice' : 'Signed') : null,
          failingPill(w),
          w.description ? h('span', { class: 'wh-desc' }, w.description) : null),
        w.disabled_reason && !w.enabled ? h('p', { class: 'wh-reason', role: 'note' }, icon('alert'), h('span', null, h('strong', null, 'Disabled by hookd: '), w.disabled_reason)) : null,
        unreadableNote(w),
        graceNote(w)),
      h('div', { class: 'page-actions' }, actions));
  }

  // retry queues one more attempt of a's delivery, and returns the
  // delivery as queued (null when refused).
  async function retry(w, a, btn) {
    if (btn) btn.disabled = true;
    try {
      const d = await api('POST', hookPath(w.id) + '/delivery/' + encodeURIComponent(a.delivery_id) + '/retry');
      toast('Retry queued: a new attempt will appear in the log');
      return d;
    } catch (err) {
      // 409: the delivery is being sent right now, or the webhook is
      // disabled, maybe by hookd since the page loaded: hookd's detail says which.
      if (err.status !== 401) toast('Could not retry: ' + err.message, 'error');
      return null;
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  async function sendTest(w, btn) {
    btn.disabled = true;
    try {
      await api('POST', hookPath(w.id) + '/test');
      toast('Test event sent');
    } catch (err) {
      if (err.status !== 401) toast('Could not send a test event: ' + err.message, 'error');
    } finally {
      btn.disabled = false;
    }
  }

  function subjectCell(a) {
    const s = subject(a);
    if (s.project || s.environment) {
      return h('div', { class: 'subject' },
        h('span', { class: 'subject-project' }, s.project || '—'),
        h('span', { class: 'subject-env muted' }, (s.environment || '—') + (s.mode ? ' · ' + s.mode.toLowerCase() : '')));
    }
    return h('span', { class: 'muted subject-summary', title: s.summary || '' }, s.summary || '—');
  }

  // The webhook's health over 24 hours and 7 days: figures and charts.
  function healthPanel(w) {
    const body = h('div', { class: 'health-body' }, spinner());
    const panel = h('section', { class: 'card health', id: 'health', 'aria-labelledby': 'health-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'health-title' }, 'Health'),
        // The API refuses what would send to a webhook it cannot decrypt.
        w.secrets_unreadable ? null : button('Recover deliveries', { class: 'btn-secondary btn-sm', icon: 'retry', id: 'recover-open', onclick: () => recoverDialog(w, panel.load) })),
      body);
    panel.load = async () => {
      let st;
      try {
        st = await api('GET', hookPath(w.id) + '/stats');
      } catch (err) {
        if (err.status !== 401) body.replaceChildren(h('p', { class: 'muted' }, 'Could not load the stats: ' + err.message));
        return;
      }
      const row = (label, short, d, id) => h('tr', { id },
        h('th', { scope: 'row' }, h('span', { class: 'label-long' }, label), h('span', { class: 'label-short' }, short)),
        h('td', { class: 'num', dataset: { stat: 'success' } }, percent(d.success_rate)),
        h('td', { class: 'num', dataset: { stat: 'attempts' } }, String(d.attempts)),
        h('td', { class: 'num' + (d.failures ? ' text-bad' : ''), dataset: { stat: 'failures' } }, String(d.failures)),
        h('td', { class: 'num mono', dataset: { stat: 'p50' } }, millis(d.p50_ms)),
        h('td', { class: 'num mono', dataset: { stat: 'p95' } }, millis(d.p95_ms)));
      body.replaceChildren(
        h('div', { class: 'stats-wrap' }, h('table', { class: 'stats', id: 'stats-table' },
          h('thead', null, h('tr', null, h('th', null, h('span', { class: 'sr-only' }, 'Window')), h('th', { class: 'num' }, 'Success'),
            h('th', { class: 'num' }, 'Attempts'), h('th', { class: 'num' }, 'Failures'), h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p95'))),
          h('tbody', null, row('Last 24 hours', '24 h', st.last_24_hours, 'stats-24h'), row('Last 7 days', '7 d', st.last_7_days, 'stats-7d')))),
        h('div', { class: 'charts' },
          h('figure', null, healthChart(st.last_24_hours, { id: 'chart-24h', label: 'Attempts per hour over the last 24 hours, failures in red' }),
            h('figcaption', { class: 'muted' }, 'Attempts per hour, last 24 hours')),
          h('figure', null, healthChart(st.last_7_days, { id: 'chart-7d', daily: true, label: 'Attempts per day over the last 7 days, failures in red' }),
            h('figcaption', { class: 'muted' }, 'Attempts per day, last 7 days'))));
    };
    panel.load();
    return panel;
  }

  // datetime-local wants local time without a zone.
  function localInput(d) {
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  }

  // After a receiver's outage: re-queue the failed deliveries of a window,
  // and on request make those waiting for a retry due now.
  function recoverDialog(w, done) {
    const since = h('input', { id: 'recover-since', type: 'datetime-local', required: true, value: localInput(new Date(Date.now() - 24 * 3600e3)) });
    const status = h('select', { id: 'recover-status' },
      h('option', { value: '' }, 'Any failure'),
      h('option', { value: '5xx' }, 'Server errors (5xx)'),
      h('option', { value: '4xx' }, 'Client errors (4xx)'),
      h('option', { value: 'none' }, 'No answer (timeout, refused)'));
    const pending = h('input', { type: 'checkbox', id: 'recover-pending' });
    const submit = button('Recover', { class: 'btn-primary', icon: 'retry', type: 'submit', id: 'recover-submit' });
    const err = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'recover-title' });
    const close = () => {
      dlg.close();
      dlg.remove();
    };
    const form = h('form', { method: 'dialog', novalidate: true },
      h('h2', { id: 'recover-title' }, 'Recover deliveries'),
      h('p', { class: 'muted' }, 'Every failed delivery created since this time gets one more attempt, now. Deliveries running or succeeded are left alone, so recovering twice sends nothing twice.'),
      h('div', { class: 'field' }, h('label', { for: 'recover-since' }, 'Created since'), since),
      h('div', { class: 'field' }, h('label', { for: 'recover-status' }, 'Last answer'), status),
      h('div', { class: 'field' }, h('label', { class: 'check', for: 'recover-pending' }, pending,
        h('span', null, h('strong', null, 'Also the pending ones waiting for a retry'),
          h('span', { class: 'muted' }, ' — sent now instead of at their next retry; each keeps its attempt count')))),
      err,
      h('div', { class: 'dialog-actions' }, button('Cancel', { onclick: close }), submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const t = new Date(since.value);
      if (!since.value || Number.isNaN(t.getTime())) {
        err.textContent = 'Choose when the failures began.';
        err.hidden = false;
        return;
      }
      submit.disabled = true;
      try {
        const body = { since: t.toISOString() };
        if (status.value) body.status = status.value;
        if (pending.checked) body.pending = true;
        const r = await api('POST', hookPath(w.id) + '/recover', body);
        close();
        const parts = [];
        if (r.failed) parts.push(plural(r.failed, 'failed delivery', 'failed deliveries') + ' queued again');
        if (r.pending) parts.push(plural(r.pending, 'pending delivery', 'pending deliveries') + ' due now');
        toast(parts.length ? parts.join(', ') : body.pending ? 'Nothing to recover in that window' : 'No failed delivery to recover in that window');
        if (done) done();
      } catch (ex) {
        err.textContent = ex.message;
        err.hidden = false;
        submit.disabled = false;
      }
    });
    dlg.addEventListener('close', () => dlg.remove());
    dlg.append(form);
    document.body.append(dlg);
    dlg.showModal();
    since.focus();
  }

  let logFilter = 'all'; // kept while the page lives, not stored
  const MAX_LOG = 100; // the attempts GET …/event lists

  async function renderLog(id) {
    const alive = current();
    page('Delivery log', spinner());
    focusMain();
    let w;
    try {
      w = await api('GET', hookPath(id));
    } catch (err) {
      if (alive() && err.status !== 401) page('Delivery log', errorBox(err, route));
      return;
    }
    if (!alive()) return;

    let filter = logFilter;
    let attempts = null;
    let seen = null;
    let shownKey = '';

    const testBtn = button('Send test event', { class: 'btn-primary', icon: 'send', id: 'send-test' });
    testBtn.addEventListener('click', async () => { await sendTest(w, testBtn); load(); });
    // A webhook hookd disabled (a 410, or failing too long) is enabled
    // here, where its reason shows and where retrying and recovering
    // say to enable it first.
    const enableBtn = button('Enable', { class: 'btn-primary', id: 'enable-webhook' });
    enableBtn.addEventListener('click', async () => {
      enableBtn.disabled = true;
      try {
        const saved = await setEnabled(w.id, true);
        if (!alive()) return;
        Object.assign(w, saved);
        toast('Webhook enabled: hookd sends it events again. Recover the deliveries that failed meanwhile to send them too.');
        redrawHeader();
      } catch (err) {
        if (err.status !== 401) toast('Could not enable: ' + err.message, 'error');
      } finally {
        enableBtn.disabled = false;
      }
    });
    // One hookd cannot decrypt can only be read and deleted (unreadableNote).
    const actions = w.secrets_unreadable ? [] : [link('Edit', '#/webhooks/' + w.id + '/edit', { class: 'btn btn-secondary', icon: 'edit', id: 'edit-webhook' }), enableBtn, testBtn];

    const segs = [['all', 'All'], ['success', 'Success'], ['failure', 'Failure']].map(([v, l]) => {
      const b = h('button', { type: 'button', class: 'seg', 'aria-pressed': String(filter === v), dataset: { filter: v } }, l, h('span', { class: 'seg-count' }));
      b.addEventListener('click', () => {
        filter = logFilter = v;
        for (const s of segsEl.children) s.setAttribute('aria-pressed', String(s.dataset.filter === v));
        shownKey = '';
        draw();
      });
      return b;
    });
    const segsEl = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Filter by outcome' }, segs);
    const live = h('span', { class: 'live', title: 'Refreshes every few seconds' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), 'Live');
    const tbody = h('tbody', { id: 'log-rows' });
    const table = h('div', { class: 'table-wrap card' }, h('table', { class: 'log', id: 'log-table' },
      h('caption', { class: 'sr-only' }, 'Attempts to send events to this webhook, newest first'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Event'), h('th', { scope: 'col' }, 'Project / environment'),
        h('th', { scope: 'col', class: 'num' }, 'Status'), h('th', { scope: 'col', class: 'num' }, 'Duration'), h('th', { scope: 'col' }, 'Outcome'),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      tbody));
    const empty = h('div', { class: 'card state', id: 'log-empty', hidden: true });
    const loadErr = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
    // The log holds the newest attempts only: past them, the deliveries
    // page back (after an outage, the failures before the recovery).
    const older = h('p', { class: 'log-foot muted', id: 'log-older', hidden: true },
      'The log shows the newest ' + MAX_LOG + ' attempts. ', link('Older deliveries', deliveriesHref(w.id), { class: 'btn btn-secondary btn-sm', id: 'older-deliveries', icon: 'chevron' }));

    function draw() {
      if (!attempts) return;
      const counts = { all: attempts.length, success: attempts.filter(isSuccess).length };
      counts.failure = counts.all - counts.success;
      for (const s of segsEl.children) s.querySelector('.seg-count').textContent = counts[s.dataset.filter];
      older.hidden = attempts.length < MAX_LOG;
      const rows = attempts.filter((a) => filter === 'all' || (filter === 'success') === isSuccess(a));
      const key = filter + ':' + rows.map((a) => a.id).join(',');
      refreshTimes(tbody);
      if (key === shownKey) return;
      shownKey = key;
      table.hidden = rows.length === 0;
      empty.hidden = rows.length > 0;
      if (!rows.length) {
        empty.replaceChildren(
          h('span', { class: 'state-art', 'aria-hidden': 'true' }, icon('inbox')),
          h('h2', null, attempts.length ? 'No ' + filter + ' in the log' : 'No delivery yet'),
          h('p', { class: 'muted' }, attempts.length ? 'Choose another filter to see the other attempts.' : 'Every request hookd sends to this webhook appears here. Send a test event to see one.'));
      }
      const focused = document.activeElement && document.activeElement.closest('#log-rows [data-focus]');
      const focusKey = focused ? focused.dataset.focus : '';
      tbody.replaceChildren(...rows.map((a) => {
        const href = '#/webhooks/' + w.id + '/attempts/' + a.id;
        const rb = button('Retry', { class: 'btn-ghost btn-sm', icon: 'retry', ariaLabel: 'Retry delivery of this attempt', dataset: { focus: 'retry-' + a.id, action: 'retry' } });
        rb.addEventListener('click', async (e) => { e.stopPropagation(); await retry(w, a, rb); load(); });
        const tr = h('tr', { class: 'log-row' + (seen && !seen.has(a.id) ? ' row-new' : ''), dataset: { id: a.id } },
          h('td', { 'data-label': 'Time' }, h('a', { href, class: 'row-link', dataset: { focus: 'open-' + a.id } }, timeAgo(a.created_at)),
            a.attempt > 1 ? h('span', { class: 'attempt-no', title: 'Attempt ' + a.attempt + ' of this delivery' }, '#' + a.attempt) : null),
          h('td', { 'data-label': 'Event' }, h('span', { class: 'event-name ev-' + String(a.matched_event).toLowerCase() }, EVENT_LABEL[a.matched_event] || a.matched_event)),
          h('td', { 'data-label': 'Project' }, subjectCell(a)),
          h('td', { 'data-label': 'Status', class: 'num' }, statusCode(a)),
          h('td', { 'data-label': 'Duration', class: 'num mono' }, duration(a.duration_ms)),
          h('td', { 'data-label': 'Outcome' }, outcomePill(a), a.error ? h('span', { class: 'row-error', title: a.error }, a.error) : null),
          h('td', { class: 'actions' }, w.secrets_unreadable ? null : rb));
        tr.addEventListener('click', (e) => { if (!e.target.closest('a, button')) location.hash = href; });
        return tr;
      }));
      if (focusKey) tbody.querySelector('[data-focus="' + focusKey + '"]')?.focus();
      seen = new Set(attempts.map((a) => a.id));
    }

    // An attempt can change the webhook too (hookd disables it after a
    // 410, it starts or stops failing): the header follows the log.
    enableBtn.hidden = w.enabled;
    let header = webhookHeader(w, actions);
    function redrawHeader() {
      enableBtn.hidden = w.enabled;
      const focused = document.activeElement; // the buttons move to the new header
      const next = webhookHeader(w, actions);
      header.replaceWith(next);
      header = next;
      if (focused === enableBtn && w.enabled) testBtn.focus(); // it hides
      else if (focused && next.contains(focused)) focused.focus();
    }
    async function reloadHeader() {
      try {
        const fresh = await api('GET', hookPath(w.id));
        if (!alive()) return;
        Object.assign(w, fresh);
        redrawHeader();
      } catch {
        // The log's own polling reports what is wrong.
      }
    }

    let inflight = false;
    async function load() {
      if (inflight || !alive()) return;
      inflight = true;
      try {
        const data = await api('GET', hookPath(w.id) + '/event');
        if (!alive()) return;
        const before = attempts && attempts.map((a) => a.id).join(',');
        attempts = data.results || [];
        if (before !== null && before !== attempts.map((a) => a.id).join(',')) {
          // The header and the health figures follow the log, rather
          // than contradict it until their own refresh.
          reloadHeader();
          health.load();
        }
        loadErr.hidden = true;
        live.classList.remove('live-off');
        draw();
      } catch (err) {
        if (!alive() || err.status === 401) return;
        loadErr.textContent = 'Could not refresh the log: ' + err.message;
        loadErr.hidden = false;
        live.classList.add('live-off');
      } finally {
        inflight = false;
      }
    }

    const health = healthPanel(w);
    page('Delivery log',
      link('Webhooks', '#/', { class: 'back', icon: 'back' }),
      header,
      health,
      h('div', { class: 'toolbar' }, segsEl, live, link('All deliveries', deliveriesHref(w.id), { class: 'btn btn-ghost btn-sm', id: 'all-deliveries' })),
      loadErr, table, empty, older);
    table.hidden = true;
    await load();
    const timer = setInterval(() => { if (!document.hidden) load(); }, POLL_MS);
    const healthTimer = setInterval(() => { if (!document.hidden && alive()) health.load(); }, 30000);
    onLeave(() => { clearInterval(timer); clearInterval(healthTimer); });
  }

  // ---------- deliveries ----------

  // The delivery log's attempts are the newest 100 (Qovery's operation
  // has no paging); a webhook's deliveries page back as far as retention
  // keeps them, PAGE at a time, each page its own URL
  // (#/webhooks/ID/deliveries?status=failed&cursor=…), so a page can be
  // linked to, reloaded, and left with Back like every other.
  const DELIVERY_PAGE = 50;
  const DELIVERY_STATUSES = [['', 'All'], ['failed', 'Failed'], ['pending', 'Pending'], ['running', 'Sending'], ['succeeded', 'Succeeded']];
  const DELIVERY_PILL = { pending: 'pill-off', running: 'pill-off', succeeded: 'pill-ok', failed: 'pill-bad' };

  function deliveriesHref(id, q = {}) {
    const qs = new URLSearchParams();
    if (q.status) qs.set('status', q.status);
    if (q.cursor) qs.set('cursor', q.cursor);
    const s = qs.toString();
    return '#/webhooks/' + id + '/deliveries' + (s ? '?' + s : '');
  }

  // When a pending delivery is tried next. A disabled webhook is sent
  // nothing: hookd fails its deliveries as they come due.
  function nextAttempt(w, d) {
    if (!w.enabled) return h('span', { class: 'next-attempt text-bad' }, 'not sent while the webhook is disabled');
    return d.next_attempt_at ? h('span', { class: 'next-attempt muted' }, timeAgo(d.next_attempt_at, 'next ')) : null;
  }

  function deliveryRow(w, d) {
    const rb = button('Retry', { class: 'btn-ghost btn-sm', icon: 'retry', ariaLabel: 'Retry this delivery', dataset: { action: 'retry' } });
    rb.addEventListener('click', async () => {
      const queued = await retry(w, { delivery_id: d.id }, rb);
      const tr = rb.closest('tr');
      if (queued && tr && tr.isConnected) tr.replaceWith(deliveryRow(w, queued));
    });
    const label = (DELIVERY_STATUSES.find(([v]) => v === d.status) || [d.status, d.status])[1];
    return h('tr', { dataset: { id: d.id, status: d.status } },
      h('td', { 'data-label': 'Created' }, timeAgo(d.created_at)),
      h('td', { 'data-label': 'Event' }, h('span', { class: 'event-name ev-' + String(d.event_type).toLowerCase() }, EVENT_LABEL[d.event_type] || d.event_type)),
      h('td', { 'data-label': 'Status' }, h('span', { class: 'pill ' + (DELIVERY_PILL[d.status] || 'pill-off') }, h('span', { class: 'dot' }), label),
        d.status === 'pending' ? nextAttempt(w, d) : null),
      h('td', { 'data-label': 'Attempts', class: 'num' }, String(d.attempts)),
      h('td', { 'data-label': 'Last answer', class: 'num' }, d.attempts ? statusCode({ target_response_status_code: d.last_status_code, error: d.last_error }) : h('span', { class: 'muted' }, '—')),
      h('td', { 'data-label': 'Last error' }, d.last_error ? h('span', { class: 'row-error', title: d.last_error }, d.last_error) : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'actions' }, rb));
  }

  async function renderDeliveries(id, q) {
    const alive = current();
    page('Deliveries', spinner());
    focusMain();
    const status = q.get('status') || '';
    const cursor = q.get('cursor') || '';
    let w;
    let list;
    try {
      const qs = new URLSearchParams({ limit: String(DELIVERY_PAGE) });
      if (status) qs.set('status', status);
      if (cursor) qs.set('cursor', cursor);
      [w, list] = await Promise.all([api('GET', hookPath(id)), api('GET', hookPath(id) + '/delivery?' + qs)]);
    } catch (err) {
      if (alive() && err.status !== 401) page('Deliveries', link('Delivery log', '#/webhooks/' + id, { class: 'back', icon: 'back' }), errorBox(err, route));
      return;
    }
    if (!alive()) return;
    const rows = list.results || [];
    const filters = h('nav', { class: 'segmented', 'aria-label': 'Filter by status' }, DELIVERY_STATUSES.map(([v, l]) =>
      h('a', { class: 'seg', href: deliveriesHref(id, { status: v }), 'aria-current': v === status ? 'page' : null, dataset: { status: v || 'all' } }, l)));
    const what = status ? (DELIVERY_STATUSES.find(([v]) => v === status) || [status, status])[1].toLowerCase() + ' deliveries' : 'deliveries';
    const nav = h('div', { class: 'pager' },
      cursor ? link('Newest', deliveriesHref(id, { status }), { id: 'deliveries-newest' }) : null,
      list.next_cursor ? link('Older', deliveriesHref(id, { status, cursor: list.next_cursor }), { id: 'deliveries-older', icon: 'chevron' }) : null);
    const body = rows.length
      ? h('div', { class: 'table-wrap card' }, h('table', { class: 'log', id: 'delivery-table' },
        h('caption', { class: 'sr-only' }, 'Deliveries to this webhook, newest first'),
        h('thead', null, h('tr', null, ['Created', 'Event', 'Status', 'Attempts', 'Last answer', 'Last error', ''].map((t, i) =>
          h('th', { scope: 'col', class: i === 3 || i === 4 ? 'num' : null }, t ? t : h('span', { class: 'sr-only' }, 'Actions'))))),
        h('tbody', { id: 'delivery-rows' }, rows.map((d) => deliveryRow(w, d)))))
      : h('div', { class: 'card state', id: 'deliveries-empty' },
        h('span', { class: 'state-art', 'aria-hidden': 'true' }, icon('inbox')),
        h('h2', null, cursor ? 'No older ' + what : 'No ' + what),
        h('p', { class: 'muted' }, cursor ? 'This is as far back as hookd keeps them.' : 'Each event this webhook matches makes one delivery.'));
    page('Deliveries',
      link('Delivery log', '#/webhooks/' + id, { class: 'back', icon: 'back' }),
      webhookHeader(w, [], 'Deliveries'),
      h('p', { class: 'muted' }, 'Every delivery of an event to this webhook, newest first, ' + DELIVERY_PAGE + ' a page: one line per event, however many attempts it took.' +
        (cursor ? ' This page starts after the delivery ' + cursor.slice(0, 8) + '.' : '')),
      h('div', { class: 'toolbar' }, filters),
      body, nav);
    const tick = setInterval(() => refreshTimes(), 30000);
    onLeave(() => clearInterval(tick));
  }

  // ---------- attempt detail ----------

  async function renderDetail(id, attemptID) {
    const alive = current();
    page('Delivery', spinner());
    focusMain();
    let w;
    let a;
    try {
      const [hook, log] = await Promise.all([api('GET', hookPath(id)), api('GET', hookPath(id) + '/event')]);
      w = hook;
      a = (log.results || []).find((x) => x.id === attemptID);
    } catch (err) {
      if (alive() && err.status !== 401) page('Delivery', errorBox(err, route));
      return;
    }
    if (!alive()) return;
    const back = link('Delivery log', '#/webhooks/' + id, { class: 'back', icon: 'back' });
    if (!a) {
      page('Delivery', back, h('div', { class: 'card state' }, h('h1', null, 'Attempt not found'), h('p', { class: 'muted' }, 'hookd lists a webhook’s last ' + MAX_LOG + ' attempts: this one is older, or retention removed it. Its delivery is among the webhook’s deliveries, with its last answer.'),
        link('All deliveries', deliveriesHref(id), { class: 'btn btn-secondary' })));
      return;
    }
    const s = subject(a);
    const body = pretty(a.request);
    const resp = a.target_response_body ? pretty(a.target_response_body) : '';
    const retryBtn = button('Retry delivery', { class: 'btn-primary', icon: 'retry', id: 'retry-delivery' });
    retryBtn.addEventListener('click', () => retry(w, a, retryBtn));

    const facts = [
      ['Time', h('span', null, absolute(a.created_at), ' ', h('span', { class: 'muted' }, '(', timeAgo(a.created_at), ')'))],
      ['Event', h('code', null, a.matched_event)],
      ['Project', s.project || '—'],
      ['Environment', (s.environment || '—') + (s.mode ? ' · ' + s.mode.toLowerCase() : '')],
      ['Status code', statusCode(a)],
      ['Duration', duration(a.duration_ms)],
      ['Attempt', String(a.attempt || 1)],
      ['Delivery', h('span', { class: 'mono break' }, a.delivery_id || '—')],
      ['URL', h('span', { class: 'mono break' }, a.target_url_used)],
    ];
    if (a.error) facts.push(['Error', h('span', { class: 'text-bad' }, a.error)]);

    const headers = sentHeaders(a, w);
    page('Delivery',
      back,
      h('div', { class: 'page-head' },
        h('div', { class: 'head-text' },
          h('p', { class: 'eyebrow' }, 'Delivery attempt'),
          h('h1', { class: 'detail-title' }, (EVENT_LABEL[a.matched_event] || a.matched_event) + (s.project ? ' · ' + s.project : ''), ' ', outcomePill(a))),
        h('div', { class: 'page-actions' }, retryBtn)),
      h('div', { class: 'detail-grid' },
        h('section', { class: 'card facts', 'aria-labelledby': 'facts-title' },
          h('h2', { id: 'facts-title' }, 'Summary'),
          h('dl', null, facts.map(([k, v]) => h('div', { class: 'fact' }, h('dt', null, k), h('dd', null, v))))),
        h('div', { class: 'detail-main' },
          h('section', { class: 'card panel', 'aria-labelledby': 'req-title', id: 'request-panel' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'req-title' }, 'Request'), h('span', { class: 'muted mono' }, 'POST ', a.target_url_used)),
            h('h3', null, 'Headers sent'),
            h('table', { class: 'headers', id: 'request-headers' }, h('tbody', null, headers.map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', { class: v.includes('••••') ? 'masked' : '' }, v))))),
            h('p', { class: 'hint' }, 'hookd does not store headers: these are the ones it sends for this webhook', w.target_secret_set ? ', with the secret masked.' : '.'),
            h('div', { class: 'panel-sub' }, h('h3', null, 'Body'), copyButton(() => body, 'request body')),
            codeBlock(body, 'Request body')),
          h('section', { class: 'card panel', 'aria-labelledby': 'resp-title', id: 'response-panel' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'resp-title' }, 'Response'), statusCode(a)),
            a.error ? h('div', { class: 'alert alert-error' }, a.error) : null,
            h('div', { class: 'panel-sub' }, h('h3', null, 'Body'), resp ? copyButton(() => resp, 'response body') : null),
            resp ? codeBlock(resp, 'Response body') : h('p', { class: 'muted empty-body' }, 'The response had no body.')))));
    const tick = setInterval(() => refreshTimes(), 30000);
    onLeave(() => clearInterval(tick));
  }

  // ---------- audit log ----------

  const ACTIONS = {
    'webhook.created': ['Created webhook', 'pill-ok'],
    'webhook.updated': ['Edited webhook', 'pill-off'],
    'webhook.enabled': ['Enabled webhook', 'pill-ok'],
    'webhook.disabled': ['Disabled webhook', 'pill-bad'],
    'webhook.deleted': ['Deleted webhook', 'pill-bad'],
    'webhook.recovered': ['Recovered deliveries', 'pill-ok'],
    'token.created': ['Created API token', 'pill-ok'],
    'token.revoked': ['Revoked API token', 'pill-bad'],
    'source.created': ['Created source', 'pill-ok'],
    'source.updated': ['Edited source', 'pill-off'],
    'source.deleted': ['Deleted source', 'pill-bad'],
  };
  const FIELDS = {
    kind: 'Kind',
    target_url: 'Target URL',
    target_secret: 'Signing secret',
    description: 'Description',
    enabled: 'Enabled',
    events: 'Events',
    project_names_filter: 'Project names',
    environment_types_filter: 'Environment types',
    disabled_reason: 'Disabled reason',
    name: 'Name',
    since: 'Since',
    until: 'Until',
    status: 'Last answer',
    deliveries: 'Deliveries re-queued',
    failed: 'Failed, queued again',
    pending: 'Pending, due now',
    secret: 'Source secret',
    environment_types: 'Environment types',
  };

  function actorCell(a) {
    const id = a.id || '';
    switch (a.kind) {
      case 'token': return h('span', { class: 'actor', title: 'API token ' + id }, h('span', { class: 'actor-kind' }, 'API token'), h('span', { class: 'mono' }, id.slice(0, 8)));
      case 'jwt': return h('span', { class: 'actor', title: 'JWT subject ' + id }, h('span', { class: 'actor-kind' }, 'JWT'), h('span', null, id || '(no subject)'));
      case 'cli': return h('span', { class: 'actor', title: 'The hookd command on the server' }, h('span', { class: 'actor-kind' }, 'hookd CLI'), id ? h('span', { class: 'mono' }, id) : null);
      case 'hookd': return h('span', { class: 'actor', title: 'hookd itself' }, h('span', { class: 'actor-kind' }, 'hookd'), h('span', { class: 'muted' }, 'automatic'));
    }
    return h('span', { class: 'actor' }, a.kind + ' ' + id);
  }

  // A field's value as a person reads it; the API sends JSON values.
  function auditValue(field, v) {
    if (v === undefined || v === null) return '—';
    if (Array.isArray(v)) {
      if (!v.length) return field === 'events' ? 'none' : 'any';
      if (field === 'environment_types') return formatRules(v);
      return v.map((x) => (field === 'events' ? EVENT_LABEL[x] || x : String(x))).join(', ');
    }
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (v === '') return '(empty)';
    // A recovery's window, in the reader's time like every other time here.
    if (field === 'since' || field === 'until') return absolute(v) || String(v);
    return String(v);
  }

  const SECRET_TEXT = { set: 'set', changed: 'changed', removed: 'removed' };

  function changeItem(c) {
    const label = h('span', { class: 'change-field' }, FIELDS[c.field] || c.field);
    if (c.field === 'target_secret' || c.field === 'secret') {
      return h('li', { dataset: { field: c.field } }, label, ' ', h('span', { class: 'change-secret' }, icon('lock'), SECRET_TEXT[c.secret] || c.secret));
    }
    const kids = [label, ' '];
    const hasBefore = 'before' in c;
    const hasAfter = 'after' in c;
    if (hasBefore && hasAfter) {
      kids.push(h('span', { class: 'change-before' }, auditValue(c.field, c.before)), ' → ', h('span', { class: 'change-after' }, auditValue(c.field, c.after)));
    } else if (hasAfter) {
      kids.push(h('span', { class: 'change-after' }, auditValue(c.field, c.after)));
    } else if (hasBefore) {
      kids.push(h('span', { class: 'change-before' }, auditValue(c.field, c.before)));
    }
    if (c.secret) kids.push(' ', h('span', { class: 'change-secret' }, icon('lock'), 'password ' + (SECRET_TEXT[c.secret] || c.secret)));
    return h('li', { dataset: { field: c.field } }, kids);
  }

  function auditRow(e) {
    const [label, cls] = ACTIONS[e.action] || [e.action, 'pill-off'];
    const name = e.resource_name || e.resource_id;
    const resource = e.resource_type === 'webhook' && e.action !== 'webhook.deleted'
      ? h('a', { href: '#/webhooks/' + e.resource_id, class: 'audit-resource', title: e.resource_id }, name)
      : h('span', { class: 'audit-resource', title: e.resource_id }, name);
    return h('tr', { dataset: { id: e.id, action: e.action } },
      h('td', { 'data-label': 'Time' }, timeAgo(e.created_at)),
      h('td', { 'data-label': 'Who' }, actorCell(e.actor || {})),
      h('td', { 'data-label': 'Action' }, h('span', { class: 'pill ' + cls }, label)),
      h('td', { 'data-label': 'On' }, resource),
      h('td', { 'data-label': 'Changes' }, (e.changes || []).length
        ? h('ul', { class: 'changes' }, e.changes.map(changeItem))
        : h('span', { class: 'muted' }, '—')));
  }

  async function renderAudit() {
    const alive = current();
    page('Audit log', spinner());
    focusMain();
    let first;
    try {
      first = await api('GET', '/audit?limit=50');
    } catch (err) {
      if (alive() && err.status !== 401) page('Audit log', errorBox(err, route));
      return;
    }
    if (!alive()) return;
    const head = h('div', { class: 'page-head' }, h('div', null,
      h('h1', null, 'Audit log'),
      h('p', { class: 'muted' }, 'Every change to this organization’s webhooks and API tokens, newest first: who made it, when, and what changed. Secrets are never recorded.')));
    const entries = first.results || [];
    if (!entries.length) {
      page('Audit log', link('Webhooks', '#/', { class: 'back', icon: 'back' }), head,
        h('div', { class: 'card state', id: 'audit-empty' },
          h('span', { class: 'state-art', 'aria-hidden': 'true' }, icon('inbox')),
          h('h2', null, 'Nothing changed yet'),
          h('p', { class: 'muted' }, 'Creating, editing or deleting a webhook, and creating or revoking a token, will appear here.')));
      return;
    }
    const tbody = h('tbody', { id: 'audit-rows' }, entries.map(auditRow));
    const more = button('Load older entries', { id: 'audit-more' });
    const moreErr = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
    let cursor = first.next_cursor;
    more.hidden = !cursor;
    more.addEventListener('click', async () => {
      more.disabled = true;
      try {
        const next = await api('GET', '/audit?limit=50&cursor=' + encodeURIComponent(cursor));
        if (!alive()) return;
        append(tbody, (next.results || []).map(auditRow));
        cursor = next.next_cursor;
        more.hidden = !cursor;
        moreErr.hidden = true;
      } catch (err) {
        if (!alive() || err.status === 401) return;
        moreErr.textContent = 'Could not load older entries: ' + err.message;
        moreErr.hidden = false;
      } finally {
        more.disabled = false;
      }
    });
    page('Audit log',
      link('Webhooks', '#/', { class: 'back', icon: 'back' }),
      head,
      h('div', { class: 'table-wrap card' }, h('table', { class: 'audit', id: 'audit-table' },
        h('caption', { class: 'sr-only' }, 'Changes to webhooks and API tokens, newest first'),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Who'), h('th', { scope: 'col' }, 'Action'),
          h('th', { scope: 'col' }, 'On'), h('th', { scope: 'col' }, 'Changes'))),
        tbody)),
      moreErr,
      h('div', { class: 'audit-foot' }, more));
    const tick = setInterval(() => refreshTimes(), 30000);
    onLeave(() => clearInterval(tick));
  }

  // ---------- event sources ----------

  const SOURCE_KINDS = [
    ['GITHUB', 'GitHub', 'deployment_status events, X-Hub-Signature-256'],
    ['GITLAB', 'GitLab', 'Deployment Hook, X-Gitlab-Token'],
    ['FLUX', 'Flux', 'generic-hmac Provider, X-Signature'],
    ['ARGOCD', 'Argo CD', 'notifications webhook, X-Hookd-Token'],
    ['QOVERY', 'Qovery', 'STANDARD webhooks, webhook-signature'],
  ];
  const SOURCE_LABEL = Object.fromEntries(SOURCE_KINDS.map(([v, l]) => [v, l]));
  const sourcesPath = '/source';

  // "prod*=PRODUCTION" lines, in order, to environment_types rules.
  function parseRules(text) {
    const rules = [];
    for (const raw of text.split(/[\n,]/)) {
      const line = raw.trim();
      if (!line) continue;
      const i = line.lastIndexOf('=');
      if (i <= 0) throw new Error('“' + line + '” is not pattern=TYPE');
      rules.push({ pattern: line.slice(0, i).trim(), type: line.slice(i + 1).trim().toUpperCase() });
    }
    return rules;
  }

  const formatRules = (rules) => (rules || []).map((r) => r.pattern + '=' + r.type).join(', ');

  function randomSecret() {
    const b = new Uint8Array(32);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function sourceRow(src, refresh, edit) {
    const editBtn = button('Edit', { class: 'btn-ghost btn-icon', icon: 'edit', iconOnly: true, title: 'Edit', ariaLabel: 'Edit ' + src.name, dataset: { action: 'edit' }, onclick: () => edit(src) });
    const del = button('Delete', { class: 'btn-ghost btn-icon btn-icon-danger', icon: 'trash', iconOnly: true, title: 'Delete', ariaLabel: 'Delete ' + src.name, dataset: { action: 'delete' } });
    // Each question names one version of the source, and only that one
    // is deleted (deleteShown); cancelled after a change, the list is
    // read again to show it as it is now.
    del.addEventListener('click', async () => {
      let shown = src;
      let ask = 'Delete the source “' + src.name + '”? Its ingest URL stops working at once.';
      while (confirm(ask)) {
        del.disabled = true;
        try {
          const now = await deleteShown(sourcesPath + '/' + encodeURIComponent(src.id), shown);
          if (!now) {
            toast('Source deleted');
            refresh();
            return;
          }
          shown = now;
          ask = 'Not deleted: this source changed since the page showed it. It is now “' + now.name + '” (' + (SOURCE_LABEL[now.kind] || now.kind)
            + ', environment types: ' + (formatRules(now.environment_types) || 'all DEVELOPMENT') + '). Delete it as it is now?';
        } catch (err) {
          if (err.status !== 401) toast(err.message, 'error');
          return;
        } finally {
          del.disabled = false;
        }
      }
      if (shown !== src) refresh();
    });
    return h('tr', { dataset: { id: src.id } },
      h('td', { 'data-label': 'Name' }, h('strong', null, src.name)),
      h('td', { 'data-label': 'Kind' }, h('span', { class: 'badge' }, SOURCE_LABEL[src.kind] || src.kind)),
      h('td', { 'data-label': 'Ingest URL' }, h('code', { class: 'ingest-url' }, src.ingest_url), ' ', copyButton(() => src.ingest_url, 'ingest URL')),
      h('td', { 'data-label': 'Environment types' }, src.environment_types && src.environment_types.length
        ? formatRules(src.environment_types) : h('span', { class: 'muted' }, 'all DEVELOPMENT')),
      h('td', { 'data-label': 'Secret' }, src.secret_unreadable
        ? h('span', { class: 'pill pill-bad', title: 'Encrypted with a key this server no longer has (HOOKD_ENCRYPTION_KEY): nothing can authenticate to this source' }, 'cannot be decrypted')
        : src.secret_set ? 'set' : 'not set'),
      h('td', { class: 'nowrap' }, src.secret_unreadable ? null : editBtn, del)); // its edit would answer 409
  }

  // sourceForm adds a source, or edits src, read at version etag: an
  // empty secret then keeps the stored one.
  function sourceForm(done, src, etag) {
    const kind = h('select', { id: 'f-source-kind', name: 'kind' }, SOURCE_KINDS.map(([v, l, d]) => h('option', { value: v, selected: !!src && src.kind === v }, l + ' — ' + d)));
    const name = h('input', { id: 'f-source-name', name: 'name', type: 'text', autocomplete: 'off', placeholder: 'acme/billing on GitHub', value: src ? src.name : '', 'aria-describedby': 'err-name' });
    const secret = h('input', { id: 'f-source-secret', name: 'secret', type: 'password', autocomplete: 'new-password', spellcheck: 'false', placeholder: src ? 'Leave empty to keep the current secret' : '', 'aria-describedby': 'hint-secret err-secret' });
    const generate = button('Generate', { class: 'btn-ghost btn-sm', id: 'source-generate' });
    generate.addEventListener('click', () => {
      secret.value = randomSecret();
      secret.type = 'text';
    });
    const rules = h('textarea', { id: 'f-source-rules', name: 'environment_types', rows: '3', spellcheck: 'false', placeholder: 'prod*=PRODUCTION\nstaging=STAGING', 'aria-describedby': 'hint-environment_types err-environment_types' });
    rules.value = src ? (src.environment_types || []).map((r) => r.pattern + '=' + r.type).join('\n') : '';
    const err = h('div', { class: 'alert alert-error', role: 'alert', hidden: true, id: 'source-error' });
    const submit = button(src ? 'Save source' : 'Add source', { class: 'btn-primary', icon: src ? null : 'plus', type: 'submit', id: 'source-submit' });
    const cancel = src ? button('Cancel', { id: 'source-cancel', onclick: done }) : null;
    const form = h('form', { class: 'form card', id: 'source-form', novalidate: true },
      h('section', { class: 'form-section' },
        h('div', { class: 'form-section-head' }, h('h2', null, src ? 'Edit “' + src.name + '”' : 'Add a source'), h('p', { class: 'muted' }, 'The tool, the secret it signs with, and how its environment names map to environment types.')),
        h('div', { class: 'form-section-body' },
          field('kind', 'Tool', kind, { for: 'f-source-kind' }),
          field('name', 'Name', name, { for: 'f-source-name' }),
          field('secret', 'Secret', h('div', { class: 'secret' }, secret, generate), { for: 'f-source-secret', hint: 'What the tool signs its requests with, at least 16 characters (Generate makes 64): paste the same value into the tool. hookd never shows it again.' }),
          field('environment_types', 'Environment types', rules, { for: 'f-source-rules', hint: 'One pattern=TYPE per line, first match wins; * matches anything. Unmatched environments are DEVELOPMENT.' }))),
      h('div', { class: 'form-foot' }, err, h('div', { class: 'form-buttons' }, cancel, submit)));
    // The fields as the form shows them (rules null while they do not
    // parse), as stored (x), and after a 412 as stored now with the
    // person's changes on top.
    const fields = (x) => ({ kind: x.kind, name: x.name.trim(), environment_types: (x.environment_types || []).map((r) => ({ pattern: r.pattern, type: r.type })), secret: x.secret_set });
    const reload = async () => {
      const read = fields(src);
      let typed = null;
      try {
        typed = parseRules(rules.value);
      } catch {
        // kept as typed below
      }
      const mine = { kind: kind.value, name: name.value.trim(), environment_types: typed || rules.value, secret: read.secret };
      const got = await send('GET', sourcesPath + '/' + encodeURIComponent(src.id));
      const { fields: f, elsewhere } = rebase(read, mine, fields(got.data));
      src = got.data;
      etag = got.etag;
      kind.value = f.kind;
      name.value = f.name;
      if (Array.isArray(f.environment_types)) rules.value = f.environment_types.map((r) => r.pattern + '=' + r.type).join('\n');
      return elsewhere;
    };
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.hidden = true;
      let body;
      try {
        body = { kind: kind.value, name: name.value.trim(), environment_types: parseRules(rules.value) };
        if (!src || secret.value) body.secret = secret.value;
      } catch (ex) {
        err.className = 'alert alert-error';
        err.textContent = 'Environment types: ' + ex.message;
        err.hidden = false;
        return;
      }
      submit.disabled = true;
      try {
        if (src) {
          await api('PUT', sourcesPath + '/' + encodeURIComponent(src.id), body, undefined, etag);
          toast('Source saved');
        } else {
          const added = await api('POST', sourcesPath, body);
          toast('Source added: point ' + (SOURCE_LABEL[added.kind] || added.kind) + ' at its ingest URL');
        }
        done();
      } catch (ex) {
        submit.disabled = false;
        if (ex.status === 401) return;
        if (ex.status === 412 && src) {
          conflictAlert(err, 'source', reload);
          return;
        }
        err.className = 'alert alert-error';
        err.textContent = ex.message;
        err.hidden = false;
      }
    });
    return form;
  }

  async function renderSources() {
    const alive = current();
    page('Sources', spinner());
    focusMain();
    let list;
    try {
      list = (await api('GET', sourcesPath)).results || [];
    } catch (err) {
      if (alive() && err.status !== 401) page('Sources', errorBox(err, route));
      return;
    }
    if (!alive()) return;
    const head = h('div', { class: 'page-head' }, h('div', null,
      h('h1', null, 'Sources'),
      h('p', { class: 'muted' }, 'Tools that report deployments to hookd themselves — GitHub, GitLab, Flux, Argo CD, Qovery — each at its own signed ingest URL. docs/sources.md says what to paste into each.')));
    const table = list.length
      ? h('div', { class: 'table-wrap card' }, h('table', { class: 'audit', id: 'source-table' },
        h('caption', { class: 'sr-only' }, 'Event sources'),
        h('thead', null, h('tr', null, ['Name', 'Kind', 'Ingest URL', 'Environment types', 'Secret', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', { id: 'source-rows' }, list.map((src) => sourceRow(src, route, edit)))))
      : h('div', { class: 'card state state-sm', id: 'sources-empty' }, h('p', { class: 'muted' }, 'No source yet.'));
    const slot = h('div', { id: 'source-form-slot' }, sourceForm(route));
    // The form edits the source as read now, at that version: the list
    // may be older, and a save replaces only the version it showed.
    async function edit(src) {
      let got;
      try {
        got = await send('GET', sourcesPath + '/' + encodeURIComponent(src.id));
      } catch (err) {
        if (alive() && err.status !== 401) toast('Could not open the source: ' + err.message, 'error');
        return;
      }
      if (!alive()) return;
      slot.replaceChildren(sourceForm(route, got.data, got.etag));
      slot.scrollIntoView({ block: 'start' });
      document.getElementById('f-source-name').focus();
    }
    page('Sources', link('Webhooks', '#/', { class: 'back', icon: 'back' }), head, table, slot);
  }

  // ---------- start ----------

  document.getElementById('sign-out').addEventListener('click', () => signOut(''));
  window.addEventListener('hashchange', route);
  route();
})();
