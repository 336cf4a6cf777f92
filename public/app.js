// The demo page's script: who is signed in and when the access token refreshes, from the
// gateway's GET /auth/me, and the demo API's echo (forwarded to the demo origin with the
// session's access token). The session cookie is HttpOnly: this script never sees a token, the
// gateway adds it on the way to the API. Claims are shown with textContent only, never as HTML.

/** Renew through /auth/me when less than this is left: the gateway refreshes tokens about to expire. */
const REFRESH_MARGIN_SECS = 30;
/** At most one /auth/me call per this many seconds while waiting for a refresh. */
const RETRY_SECS = 10;

const element = (id) => document.getElementById(id);
const nowSecs = () => Date.now() / 1000;
const clock = (secs) => new Date(secs * 1000).toLocaleTimeString();

function remaining(secs) {
  const left = Math.round(secs - nowSecs());
  if (left <= 0) return 'expired';
  const [hours, minutes] = [Math.floor(left / 3600), Math.floor(left / 60) % 60];
  if (hours) return `in ${hours} h ${minutes} min`;
  return minutes ? `in ${minutes} min ${left % 60} s` : `in ${left} s`;
}

async function fetchJson(url) {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: response.status, body };
}

async function show(id, url) {
  const out = element(id);
  let answer;
  try {
    answer = await fetchJson(url);
    out.textContent = `${answer.status}\n${JSON.stringify(answer.body, null, 2)}`;
  } catch (error) {
    out.textContent = `failed: ${error}`;
  }
  out.dataset.done = 'true';
  return answer;
}

let me = null;
let lastFetch = 0;
let refreshes = [];

async function loadMe() {
  lastFetch = nowSecs();
  const previous = me?.access_token_expires_at;
  const answer = await show('me', '/auth/me');
  me = answer?.status === 200 ? answer.body : null;
  if (me && previous && me.access_token_expires_at !== previous) refreshes.push(nowSecs());
  render();
}

function render() {
  const who = element('who');
  const token = element('token');
  if (!me) {
    who.textContent = 'Not signed in (GET /auth/me answered 401).';
    token.textContent = '';
    return;
  }
  const email = me.email ? ` <${me.email}>` : '';
  const roles = [...(me.roles ?? []), ...(me.groups ?? [])];
  who.textContent = `Signed in as ${me.name ?? me.sub}${email}, sub ${me.sub}${roles.length ? `, in ${roles.join(', ')}` : ''}; ` +
    `provider ${me.provider}; session ends at ${clock(me.session_expires_at)} (${remaining(me.session_expires_at)}).`;
  const at = me.access_token_expires_at;
  const renewed = refreshes.length ? ` Refreshed ${refreshes.length}× on this page, last at ${clock(refreshes.at(-1))}.` : '';
  token.textContent = at
    ? `Access token expires at ${clock(at)} (${remaining(at)}); the gateway refreshes it shortly before, ` +
      `on the next request (this page asks /auth/me then).${renewed}`
    : 'The provider gave no access-token lifetime.';
}

function tick() {
  if (!me) return;
  const at = me.access_token_expires_at;
  const due = at && at - nowSecs() < REFRESH_MARGIN_SECS && nowSecs() - lastFetch >= RETRY_SECS;
  if (due) loadMe(); else render();
}

loadMe().then(() => setInterval(tick, 1000));
show('api', '/api/hello');
