// The WebSocket relay for routes with `websocket = "proxy"`, bundled into the Worker's entry.
//
// The split: the Rust core decides *which* session a socket belongs to and *when* it must close
// (src/gateway/websocket.rs: the watch `[session, tombstone, closeAtMs, revalidateMs, closeCode]`,
// and the sessions an isolate ends, handed over by `endSessions`); this module only carries that
// out. It is JS because all of it is runtime plumbing (WebSocketPair, accept, event listeners,
// timers) that would cross the wasm boundary once per message if written in Rust, with nothing
// to decide on the way.
//
// A socket can only be used from the request that opened it (workerd refuses I/O on another
// request's objects), so a logout in another request cannot close it directly: `endSessions`
// records the session in a per-isolate registry, and each open relay checks that registry once a
// second on its own timer, and before relaying each message. The same tick closes the socket at
// the session's deadline and reads the session's tombstone in KV every `revalidateMs`, so a
// logout in another isolate or location (which only KV tells this one about) closes it too.

/** Sessions this isolate ended recently (storage key -> when), checked by every open relay. */
const ended = new Map();
/** How long an ended session is remembered: longer than any relay takes to see it. */
const ENDED_MEMORY_MS = 60_000;
const TICK_MS = 1_000;
/** The KV namespace of session records and tombstones (SESSIONS_BINDING in src/config/bindings.rs). */
const SESSIONS = "SESSIONS";

/** Record sessions this isolate just ended (logout, back-channel logout, a refused refresh). */
export function endSessions(keys) {
  const now = Date.now();
  for (const [key, at] of ended) if (now - at > ENDED_MEMORY_MS) ended.delete(key);
  for (const key of keys) ended.set(key, now);
}

/**
 * Answer a WebSocket upgrade on a proxy route: connect to the origin (`originFetch`, the
 * upgrade request the core planned), and if it accepts, hand the client one end of a new
 * WebSocketPair and relay messages between the two until one side closes or the watch says the
 * session is over. An origin that does not accept gets its own answer passed back (`passOn`).
 * The `101` carries the gateway's cookies (`setCookies`) and headers (`added`: flat name/value
 * pairs, e.g. a DPoP-Nonce), as any answer would.
 */
export async function proxySocket(originFetch, watch, setCookies, added, env, passOn) {
  const upstream = await originFetch;
  if (upstream.status !== 101 || !upstream.webSocket) return passOn(upstream);
  const [session, tombstone, closeAtMs, revalidateMs, closeCode] = watch;
  const origin = upstream.webSocket;
  const [client, server] = Object.values(new WebSocketPair());
  origin.accept();
  server.accept();
  let open = true;
  let tick;

  const closeBoth = (code, reason, log) => {
    if (!open) return;
    open = false;
    clearInterval(tick);
    for (const socket of [server, origin]) close(socket, code, reason);
    if (log) console.log(JSON.stringify({ event: "decision", reason: log, status: null, method: "GET", detail: reason }));
  };
  // Why the session is over, if this isolate knows it already.
  const endedReason = () => {
    if (Date.now() >= closeAtMs) return ["session expired", "socket_closed_session_expired"];
    if (session !== null && ended.has(session)) return ["signed out", "socket_closed_session_ended"];
    return null;
  };
  const relay = (from, to) => {
    from.addEventListener("message", (event) => {
      const why = endedReason();
      if (why) closeBoth(closeCode, ...why);
      else if (open) to.send(event.data);
    });
    from.addEventListener("close", (event) => closeBoth(event.code, event.reason));
    from.addEventListener("error", () => closeBoth(1011, "peer error"));
  };
  relay(server, origin);
  relay(origin, server);

  let nextRevalidation = Date.now() + revalidateMs;
  const check = async () => {
    const why = endedReason();
    if (why) return closeBoth(closeCode, ...why);
    if (tombstone === null || Date.now() < nextRevalidation) return undefined;
    nextRevalidation = Date.now() + revalidateMs;
    const found = await env[SESSIONS]?.get(tombstone).catch(() => null);
    if (found !== null && found !== undefined) closeBoth(closeCode, "session ended", "socket_closed_session_revoked");
    return undefined;
  };
  tick = setInterval(check, TICK_MS);
  check();

  const headers = new Headers();
  const protocol = upstream.headers.get("sec-websocket-protocol");
  if (protocol) headers.set("sec-websocket-protocol", protocol);
  for (const cookie of setCookies ?? []) headers.append("set-cookie", cookie);
  for (let i = 0; i + 1 < (added?.length ?? 0); i += 2) headers.set(added[i], added[i + 1]);
  return new Response(null, { status: 101, webSocket: client, headers });
}

/** Close `socket` with `code`, or 1000 where the runtime refuses that code (1005, 1006 and 1015 are never sent). */
function close(socket, code, reason) {
  try {
    socket.close(code, reason);
  } catch {
    try {
      socket.close(1000, reason);
    } catch {
      // Already closed.
    }
  }
}
