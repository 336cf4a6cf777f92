// ROUTES as wrangler delivers an inline array of tables from wrangler.toml: a structured (JSON) binding,
// not a string. README documents that form, so it must work exactly like the JSON string.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { skipReason, startStack } from '../support/stack.mjs';
import { callApi, expectNoTokenChallenge } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('routes: ROUTES as a structured binding', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES: [{ prefix: '/open/', auth: 'public' }, { prefix: '/api/', auth: 'bearer' }] } });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });

  test('public, bearer and unrouted paths behave as configured', T, async () => {
    const open = await callApi(`${s.gw}/open/page`);
    assert.equal(open.status, 200);
    const api = await callApi(`${s.gw}/api/x`);
    expectNoTokenChallenge(api);
    const unrouted = await callApi(`${s.gw}/elsewhere`);
    assert.equal(unrouted.status, 404);
  });
});
