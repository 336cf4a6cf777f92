// White-box helpers for the session cookie (src/session/record.rs, src/session/keys.rs): open it and seal
// it again with moved deadlines, so tests of idle and absolute expiry need not wait them out.
//
// value = base64url(nonce[12] || AES-256-GCM(id[32] || expires_at u64 BE || idle_until u64 BE) || tag[16]),
// AAD = the cookie name, key = HKDF-SHA256(salt "edgeguard", SESSION_SECRET, "edgeguard cookie sealing v1").
//
//   const opened = openCookie(cookie.value, secret);  // { id, expiresAt, idleUntil } (seconds)
//   jar.put({ ...cookie, value: sealCookie({ ...opened, idleUntil: now + 2 }, secret) });

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { SESSION_COOKIE } from './stack.mjs';

const cookieKey = (secret) => Buffer.from(crypto.hkdfSync('sha256', secret, 'edgeguard', 'edgeguard cookie sealing v1', 32));

export function openCookie(value, secret) {
  const raw = Buffer.from(value, 'base64url');
  const nonce = raw.subarray(0, 12);
  const tag = raw.subarray(raw.length - 16);
  const d = crypto.createDecipheriv('aes-256-gcm', cookieKey(secret), nonce);
  d.setAAD(Buffer.from(SESSION_COOKIE));
  d.setAuthTag(tag);
  let plain;
  try {
    plain = Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
  } catch {
    throw new Error('the session cookie no longer opens with the layout this test knows: update openCookie()');
  }
  assert.equal(plain.length, 48, 'cookie layout changed: expected id[32] + expires_at + idle_until');
  return { id: plain.subarray(0, 32), expiresAt: Number(plain.readBigUInt64BE(32)), idleUntil: Number(plain.readBigUInt64BE(40)) };
}

export function sealCookie({ id, expiresAt, idleUntil }, secret) {
  const plain = Buffer.alloc(48);
  id.copy(plain, 0);
  plain.writeBigUInt64BE(BigInt(expiresAt), 32);
  plain.writeBigUInt64BE(BigInt(idleUntil), 40);
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', cookieKey(secret), nonce);
  c.setAAD(Buffer.from(SESSION_COOKIE));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]).toString('base64url');
}
