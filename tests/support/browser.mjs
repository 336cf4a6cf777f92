// A headless "browser" for end-to-end tests: fetch with manual redirects and a cookie jar that behaves
// like Chromium's where it matters for a sign-in gateway (Domain/Path/Secure/HttpOnly/SameSite,
// __Host- and __Secure- prefixes, Max-Age/Expires deletion, per-host scoping, ports ignored).
//
//   const b = new Browser();
//   const r = await b.signIn(`${gw}/private?x=1`, { username: 'alice', password: 'alice' });
//   r.final.status, r.final.text, r.hops  // every request/response on the way
//   await b.get(`${gw}/api/echo`, { headers: { accept: 'application/json' } });

import http from 'node:http';
import https from 'node:https';

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

export function isLoopbackHost(hostname) {
  return LOOPBACK.test(hostname) || hostname.endsWith('.localhost');
}

function isIp(host) {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':') || host.startsWith('[');
}

function potentiallyTrustworthy(url) {
  return url.protocol === 'https:' || isLoopbackHost(url.hostname);
}

// Schemeful site, simplified: scheme + host (no public-suffix list; fine for loopback tests).
function siteOf(url) {
  return `${url.protocol}//${url.hostname.toLowerCase()}`;
}

function defaultPath(url) {
  const p = url.pathname;
  if (!p.startsWith('/') || p === '/') return '/';
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function domainMatch(host, domain) {
  if (host === domain) return true;
  return !isIp(host) && host.endsWith(`.${domain}`);
}

function pathMatch(reqPath, cookiePath) {
  if (reqPath === cookiePath) return true;
  if (!reqPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/';
}

/** Parses one Set-Cookie header value into { name, value, attrs } (attribute names lower-case). */
export function parseSetCookie(header) {
  const parts = header.split(';');
  const first = parts.shift();
  const eq = first.indexOf('=');
  if (eq < 0) return null; // Chromium would treat it as a nameless cookie; nobody here needs that
  const name = first.slice(0, eq).trim();
  const value = first.slice(eq + 1).trim();
  if (!name) return null;
  const attrs = {};
  for (const part of parts) {
    const i = part.indexOf('=');
    const k = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
    const v = i < 0 ? '' : part.slice(i + 1).trim();
    if (k) attrs[k] = v;
  }
  return { name, value, attrs };
}

export class CookieJar {
  /** @type {Array<object>} */
  #cookies = [];
  #seq = 0;

  /**
   * Stores a Set-Cookie header received for `url`.
   * Returns { stored: boolean, deleted: boolean, reason?: string, cookie?: object }.
   */
  setCookie(header, url) {
    const u = new URL(url);
    const parsed = parseSetCookie(header);
    if (!parsed) return { stored: false, reason: 'unparseable' };
    const { name, value, attrs } = parsed;
    const host = u.hostname.toLowerCase();
    const now = Date.now();

    let domain = host;
    let hostOnly = true;
    if ('domain' in attrs && attrs.domain !== '') {
      let d = attrs.domain.toLowerCase();
      if (d.startsWith('.')) d = d.slice(1);
      if (!domainMatch(host, d)) return { stored: false, reason: `domain ${d} does not match ${host}` };
      domain = d;
      hostOnly = false;
    }
    let path = attrs.path && attrs.path.startsWith('/') ? attrs.path : defaultPath(u);
    const secure = 'secure' in attrs;
    if (secure && !potentiallyTrustworthy(u)) return { stored: false, reason: 'Secure cookie from insecure origin' };

    if (name.startsWith('__Secure-') && !secure) return { stored: false, reason: '__Secure- without Secure' };
    if (name.startsWith('__Host-')) {
      if (!secure) return { stored: false, reason: '__Host- without Secure' };
      if (!hostOnly) return { stored: false, reason: '__Host- with Domain' };
      if (attrs.path !== '/') return { stored: false, reason: '__Host- without Path=/' };
      path = '/';
    }

    let expires = Infinity;
    if ('max-age' in attrs && /^-?\d+$/.test(attrs['max-age'])) {
      const s = Number(attrs['max-age']);
      expires = s <= 0 ? 0 : now + s * 1000;
    } else if ('expires' in attrs) {
      const t = Date.parse(attrs.expires);
      if (!Number.isNaN(t)) expires = t;
    }

    let sameSite = 'lax'; // Chromium's default when absent
    if ('samesite' in attrs) {
      const s = attrs.samesite.toLowerCase();
      sameSite = s === 'strict' ? 'strict' : s === 'none' ? 'none' : 'lax';
    }
    if (sameSite === 'none' && !secure) return { stored: false, reason: 'SameSite=None without Secure' };

    const existing = this.#cookies.findIndex((c) => c.name === name && c.domain === domain && c.path === path);
    let creation = now;
    if (existing >= 0) {
      creation = this.#cookies[existing].creation;
      this.#cookies.splice(existing, 1);
    }
    if (expires <= now) return { stored: false, deleted: existing >= 0, reason: 'expired' };

    const cookie = {
      name, value, domain, hostOnly, path, secure,
      httpOnly: 'httponly' in attrs, sameSite, expires, creation, seq: this.#seq += 1,
      attrs,
    };
    this.#cookies.push(cookie);
    return { stored: true, cookie };
  }

  #purge() {
    const now = Date.now();
    this.#cookies = this.#cookies.filter((c) => c.expires > now);
  }

  /**
   * Cookies that would be sent to `url`.
   * ctx: { crossSite: boolean, method: string, topLevelNavigation: boolean }
   */
  cookiesFor(url, ctx = {}) {
    this.#purge();
    const u = new URL(url);
    const host = u.hostname.toLowerCase();
    const trustworthy = potentiallyTrustworthy(u);
    const method = (ctx.method ?? 'GET').toUpperCase();
    return this.#cookies
      .filter((c) => (c.hostOnly ? c.domain === host : domainMatch(host, c.domain)))
      .filter((c) => pathMatch(u.pathname || '/', c.path))
      .filter((c) => !c.secure || trustworthy)
      .filter((c) => {
        if (!ctx.crossSite) return true;
        if (c.sameSite === 'strict') return false;
        if (c.sameSite === 'lax') return Boolean(ctx.topLevelNavigation) && ['GET', 'HEAD'].includes(method);
        return true;
      })
      .sort((a, b) => (b.path.length - a.path.length) || (a.creation - b.creation) || (a.seq - b.seq));
  }

  cookieHeader(url, ctx) {
    return this.cookiesFor(url, ctx).map((c) => `${c.name}=${c.value}`).join('; ');
  }

  /** All stored cookies (copies), optionally only those whose name matches. */
  all(filter) {
    this.#purge();
    return this.#cookies
      .filter((c) => !filter || (filter instanceof RegExp ? filter.test(c.name) : c.name === filter))
      .map((c) => ({ ...c }));
  }

  get(name, url) {
    const list = url ? this.cookiesFor(url) : this.all(name);
    return list.find((c) => c.name === name);
  }

  delete(name) { this.#cookies = this.#cookies.filter((c) => c.name !== name); }

  /** Adds a cookie directly (e.g. to replay an old one). */
  put(cookie) {
    this.#cookies = this.#cookies.filter((c) => !(c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path));
    this.#cookies.push({
      hostOnly: true, path: '/', secure: false, httpOnly: false, sameSite: 'lax', expires: Infinity,
      creation: Date.now(), seq: this.#seq += 1, attrs: {}, ...cookie,
    });
  }

  clear() { this.#cookies = []; }

  snapshot() { return this.all(); }

  restore(list) { this.#cookies = list.map((c) => ({ ...c })); }
}

function parseAttrs(s) {
  const attrs = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(s))) attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|#39|apos);/gi, (all, e) => {
    const k = e.toLowerCase();
    if (k === 'amp') return '&';
    if (k === 'lt') return '<';
    if (k === 'gt') return '>';
    if (k === 'quot') return '"';
    if (k === 'apos' || k === '#39') return "'";
    if (k.startsWith('#x')) return String.fromCodePoint(parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(parseInt(k.slice(1), 10));
    return all;
  });
}

/** Forms of an HTML page: [{ method, action (absolute), fields: {name: value}, inputs: [...] }]. */
export function parseForms(html, baseUrl) {
  const forms = [];
  const re = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  let m;
  while ((m = re.exec(html))) {
    const attrs = parseAttrs(m[1]);
    const inputs = [];
    const ire = /<(input|button|textarea)\b([^>]*)>/gi;
    let im;
    while ((im = ire.exec(m[2]))) {
      const a = parseAttrs(im[2]);
      inputs.push({ tag: im[1].toLowerCase(), type: (a.type ?? (im[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase(), name: a.name, value: a.value ?? '' });
    }
    const fields = {};
    for (const i of inputs) {
      if (!i.name || i.tag === 'button' || ['submit', 'button', 'image', 'reset'].includes(i.type)) continue;
      if ((i.type === 'checkbox' || i.type === 'radio')) continue;
      fields[i.name] = i.value;
    }
    forms.push({
      method: (attrs.method ?? 'get').toLowerCase(),
      action: new URL(attrs.action ?? '', baseUrl).href,
      attrs,
      fields,
      inputs,
    });
  }
  return forms;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * One raw HTTP exchange with exactly the headers given. (Node's fetch rewrites Sec-Fetch-Mode to
 * "cors" and adds headers of its own, so it cannot pose as a browser navigation.)
 * Resolves { status, headers: Headers, body: Buffer }.
 */
export function rawRequest(url, { method = 'GET', headers = new Headers(), body, timeoutMs = 10_000 } = {}) {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  const payload = body === undefined || body === null ? null : Buffer.from(body);
  const outHeaders = {};
  for (const [k, v] of headers) outHeaders[k] = v;
  if (payload) outHeaders['content-length'] = String(payload.length);
  else if (!['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(method)) outHeaders['content-length'] = '0';
  return new Promise((resolve, reject) => {
    const req = lib.request({
      protocol: u.protocol,
      hostname: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (u.protocol === 'https:' ? 443 : 80),
      method,
      path: `${u.pathname}${u.search}`,
      headers: outHeaders,
      setHost: true,
      agent: false, // one connection per exchange: no stale keep-alive sockets
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const h = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        resolve({ status: res.statusCode, headers: h, body: Buffer.concat(chunks) });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${u.href}`)), timeoutMs);
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.end(payload ?? undefined);
  });
}

export class Browser {
  /**
   * @param {object} [opts]
   * @param {CookieJar} [opts.jar]
   * @param {string} [opts.userAgent]
   * @param {number} [opts.timeoutMs] per request, default 10000
   */
  constructor(opts = {}) {
    this.jar = opts.jar ?? new CookieJar();
    this.userAgent = opts.userAgent ?? 'edgeguard-e2e/1 (headless)';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    /** Every request this browser made, newest last. */
    this.history = [];
  }

  /**
   * One HTTP exchange, no redirect following.
   * options: method, headers, body (string | URLSearchParams | object → JSON), navigate (bool),
   *          initiator (URL of the page that caused it, for SameSite), crossSiteChain (bool), cookies (false to send none)
   */
  async request(url, options = {}) {
    const u = new URL(url);
    const method = (options.method ?? 'GET').toUpperCase();
    const navigate = Boolean(options.navigate);
    const headers = new Headers();
    headers.set('user-agent', this.userAgent);
    if (navigate) {
      headers.set('accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
      headers.set('sec-fetch-mode', 'navigate');
      headers.set('sec-fetch-dest', 'document');
      headers.set('upgrade-insecure-requests', '1');
    } else {
      headers.set('accept', '*/*');
      headers.set('sec-fetch-mode', 'cors');
      headers.set('sec-fetch-dest', 'empty');
    }
    const initiator = options.initiator ? new URL(options.initiator) : null;
    const crossSite = Boolean(options.crossSiteChain) || (initiator ? siteOf(initiator) !== siteOf(u) : false);
    headers.set('sec-fetch-site', !initiator ? 'none' : crossSite ? 'cross-site' : (initiator.origin === u.origin ? 'same-origin' : 'same-site'));

    let body = options.body;
    if (body instanceof URLSearchParams) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = body.toString();
    } else if (body !== undefined && body !== null && typeof body === 'object' && !(body instanceof Uint8Array) && !(body instanceof ArrayBuffer)) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(body);
    }
    if (method !== 'GET' && method !== 'HEAD' && initiator) {
      headers.set('origin', initiator.origin);
    }

    if (options.cookies !== false) {
      const cookie = this.jar.cookieHeader(u, { crossSite, method, topLevelNavigation: navigate });
      if (cookie) headers.set('cookie', cookie);
    }
    for (const [k, v] of Object.entries(options.headers ?? {})) {
      if (v === undefined || v === null) headers.delete(k);
      else headers.set(k, String(v));
    }

    const started = Date.now();
    const res = await rawRequest(u, {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : body,
      timeoutMs: options.timeoutMs ?? this.timeoutMs,
    });
    const text = res.body.toString('utf8');
    const setCookie = res.headers.getSetCookie();
    const cookieResults = setCookie.map((h) => ({ header: h, ...this.jar.setCookie(h, u) }));
    const location = res.headers.get('location');
    const hop = {
      method,
      url: u.href,
      requestHeaders: Object.fromEntries(headers),
      requestBody: typeof body === 'string' ? body : undefined,
      status: res.status,
      headers: res.headers,
      location: location ? new URL(location, u).href : null,
      rawLocation: location,
      setCookie,
      cookieResults,
      contentType: res.headers.get('content-type') ?? '',
      text,
      ms: Date.now() - started,
      crossSite,
    };
    Object.defineProperty(hop, 'json', {
      enumerable: false,
      get() { return JSON.parse(text); },
    });
    this.history.push(hop);
    return hop;
  }

  /**
   * Top-level navigation that follows redirects like a browser (303 → GET; 301/302 after POST → GET;
   * 307/308 keep method and body). Returns { final, hops }.
   */
  async navigate(url, options = {}) {
    const hops = [];
    let current = new URL(url);
    let method = (options.method ?? 'GET').toUpperCase();
    let { body } = options;
    let initiator = options.initiator ?? null;
    let crossSiteChain = false;
    const max = options.maxRedirects ?? 20;
    for (;;) {
      if (options.stopBefore && hops.length > 0 && options.stopBefore(current)) {
        return { final: hops[hops.length - 1], hops, stoppedBefore: current.href };
      }
      const hop = await this.request(current, {
        method, body, headers: options.headers, navigate: true, initiator, crossSiteChain,
      });
      hops.push(hop);
      crossSiteChain ||= hop.crossSite;
      if (!REDIRECTS.has(hop.status) || !hop.location || options.follow === false) return { final: hop, hops };
      if (hops.length > max) throw new Error(`too many redirects: ${hops.map((h) => h.url).join(' -> ')}`);
      if (hop.status === 303 || ((hop.status === 301 || hop.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
      initiator = initiator ?? current.href;
      current = new URL(hop.location);
    }
  }

  /** Submits a parsed form as a top-level navigation (following redirects). */
  async submit(form, overrides = {}, { from, stopBefore } = {}) {
    const fields = { ...form.fields, ...overrides };
    const params = new URLSearchParams(fields);
    if (form.method === 'post') {
      return this.navigate(form.action, { method: 'POST', body: params, initiator: from ?? form.action, stopBefore });
    }
    const target = new URL(form.action);
    target.search = params.toString();
    return this.navigate(target, { initiator: from ?? form.action, stopBefore });
  }

  /**
   * Signs in through the gateway: navigates to `url`, follows redirects to the IdP, fills its login form
   * (username/password), accepts (or, with deny: true, denies) the consent form, and follows the redirects
   * back through the gateway's callback to the final page.
   * Returns { final, hops, callback } — callback is the hop that hit /auth/callback (if any).
   * With stopBeforeCallback: true it stops before requesting the gateway's /auth/callback and returns
   * { callbackUrl, hops } instead, so a test can tamper with or replay the callback.
   */
  async signIn(url, {
    username = 'alice', password = 'alice', deny = false, maxSteps = 12, consent = true, stopBeforeCallback = false,
  } = {}) {
    const hops = [];
    const stopBefore = stopBeforeCallback ? (u) => new URL(u).pathname === '/auth/callback' : undefined;
    let result = await this.navigate(url, { stopBefore });
    hops.push(...result.hops);
    let loginTries = 0;
    for (let step = 0; step < maxSteps; step += 1) {
      const page = result.final;
      if (page.status !== 200 || !/html/i.test(page.contentType)) break;
      const forms = parseForms(page.text, page.url);
      const login = forms.find((f) => f.method === 'post' && f.inputs.some((i) => i.type === 'password'));
      const isInteraction = (f, action) => new RegExp(`/interaction/[^/]+/${action}$`).test(new URL(f.action).pathname);
      if (login) {
        if (loginTries >= 1) break; // the IdP showed the form again: wrong credentials
        loginTries += 1;
        const userField = login.inputs.find((i) => i.type !== 'password' && i.type !== 'hidden' && i.name)?.name ?? 'username';
        const passField = login.inputs.find((i) => i.type === 'password').name;
        result = await this.submit(login, { [userField]: username, [passField]: password }, { from: page.url, stopBefore });
      } else if (forms.some((f) => isInteraction(f, 'confirm')) && consent) {
        const form = deny ? forms.find((f) => isInteraction(f, 'abort')) : forms.find((f) => isInteraction(f, 'confirm'));
        result = await this.submit(form, {}, { from: page.url, stopBefore });
      } else {
        break;
      }
      hops.push(...result.hops);
      if (result.stoppedBefore) break;
    }
    if (result.stoppedBefore) return { callbackUrl: result.stoppedBefore, hops, final: result.final };
    const callback = hops.find((h) => new URL(h.url).pathname === '/auth/callback');
    return { final: result.final, hops, callback };
  }

  /**
   * API-style call, as fetch() from a page of the same origin: no navigation headers,
   * Accept: application/json unless given, redirects not followed.
   * Pass initiator: null for a call from no page at all (curl-like; no Origin header).
   */
  async get(url, { headers = {}, ...rest } = {}) {
    return this.fetch(url, { ...rest, method: 'GET', headers });
  }

  /** API-style call with any method; `body` object → JSON; non-GET calls carry Origin like a browser's. */
  async fetch(url, options = {}) {
    const initiator = options.initiator === undefined ? `${new URL(url).origin}/` : options.initiator;
    return this.request(url, {
      ...options,
      initiator,
      headers: { accept: 'application/json', ...(options.headers ?? {}) },
    });
  }
}
