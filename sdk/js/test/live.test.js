// The SDK against a live Bridgekeeper (tests/integration/test_js_sdk.py starts
// one, with the Python example as the tenant endpoint, and sets the BK_LIVE_*
// variables). Skipped in a plain `node --test` run.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Bridgekeeper } from '../src/bridgekeeper.js';

const env = process.env;
const live = Boolean(env.BK_LIVE_BASE_URL);
const options = { appId: env.BK_LIVE_APP_ID, baseUrl: env.BK_LIVE_BASE_URL };

function mapStorage() {
  const values = new Map();
  return {
    values,
    get: (key) => values.get(key) ?? null,
    set: (key, value) => { values.set(key, value); },
    remove: (key) => { values.delete(key); },
  };
}

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, the promise resolved');
}

describe('against a live Bridgekeeper', { skip: !live && 'set BK_LIVE_BASE_URL to run' }, () => {
  const storage = mapStorage();
  const storedRefreshToken = () =>
    JSON.parse(storage.values.get(`bridgekeeper:${options.appId}:session`)).refreshToken;
  let bk;

  test('in-app login: alice / wonderland, and me() shows her custom data', async () => {
    bk = Bridgekeeper({ ...options, storage });
    const user = await bk.login({ data: { id: 'alice', passphrase: 'wonderland' } });
    assert.equal(user.externalId, '1001');
    assert.match(user.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(bk.user(), user);
    const me = await bk.me();
    assert.equal(me.id, user.id);
    assert.equal(me.app_id, options.appId);
    assert.equal(me.external_id, '1001');
    assert.deepEqual(me.custom, { plan: 'pro', lang: 'en' });
  });

  test('a wrong passphrase rejects with access_denied / tenant_denied', async () => {
    const other = Bridgekeeper(options);
    const error = await rejection(other.login({ data: { id: 'alice', passphrase: 'nope' } }));
    assert.equal(error.name, 'BridgekeeperError');
    assert.equal(error.status, 401);
    assert.equal(error.error, 'access_denied');
    assert.equal(error.reason, 'tenant_denied');
    assert.match(error.requestId, /^[0-9a-f]{32}$/);
    assert.equal(other.user(), null);
  });

  test('a custom token signed by the app\'s server logs in, once', async () => {
    const other = Bridgekeeper(options);
    const user = await other.loginWithCustomToken(env.BK_LIVE_CUSTOM_TOKEN);
    assert.equal(user.externalId, env.BK_LIVE_CUSTOM_SUB);
    assert.equal((await other.me()).external_id, env.BK_LIVE_CUSTOM_SUB);
    const replay = await rejection(Bridgekeeper(options).loginWithCustomToken(
      env.BK_LIVE_CUSTOM_TOKEN));
    assert.equal(replay.status, 400);
    assert.equal(replay.error, 'invalid_grant');
    assert.equal(replay.reason, 'token_replayed');
    await other.logout();
  });

  test('refresh rotates the tokens and the new ones work', async () => {
    const accessBefore = await bk.accessToken();
    const refreshBefore = storedRefreshToken();
    await bk.refresh();
    const accessAfter = await bk.accessToken();
    assert.notEqual(accessAfter, accessBefore);
    assert.notEqual(storedRefreshToken(), refreshBefore);
    assert.equal((await bk.me()).external_id, '1001');
  });

  test('logout ends the session at Bridgekeeper: another page\'s me() gets 401', async () => {
    const tab = Bridgekeeper({ ...options, storage });
    await tab.ready;
    assert.equal(tab.user().externalId, '1001');
    const changes = [];
    tab.onChange((user, error) => changes.push([user, error?.reason]));
    await bk.logout();
    assert.equal(bk.user(), null);
    assert.equal(storage.values.size, 0);
    const mine = await rejection(bk.me());
    assert.equal(mine.reason, 'login_required');
    const error = await rejection(tab.me());
    assert.equal(error.status, 401);
    assert.equal(error.error, 'invalid_token');
    assert.equal(error.reason, 'session_revoked');
    assert.equal(tab.user(), null);
    assert.deepEqual(changes, [[null, 'session_revoked']]);
  });
});
