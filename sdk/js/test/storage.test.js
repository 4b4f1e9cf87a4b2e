// Storage: memory by default, an opt-in adapter (sync or async) to persist the
// session, the web storage helpers, and logout.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { Bridgekeeper, localStorageAdapter, sessionStorageAdapter } from '../src/bridgekeeper.js';
import {
  APP_ID, apiError, client, fakeFetch, json, mapStorage, rejection, rotatingServer, tokens,
} from './fake-bridgekeeper.js';

const ALICE = { id: 'alice', passphrase: 'wonderland' };
const KEY = `bridgekeeper:${APP_ID}:session`;

describe('storage adapters', () => {
  for (const sync of [false, true]) {
    test(`a ${sync ? 'sync' : 'async'} adapter keeps the session for the next page`, async () => {
      const storage = mapStorage({ sync });
      const first = client({ fetch: rotatingServer(), storage, autoRefresh: false });
      await first.login({ data: ALICE });
      const stored = JSON.parse(storage.values.get(KEY));
      assert.equal(stored.accessToken, 'at-1');
      assert.equal(stored.refreshToken, 'rt-1');
      assert.deepEqual(stored.user, first.user());

      const fetch = fakeFetch(() => assert.fail('no request needed'));
      const next = client({ fetch, storage, autoRefresh: false });
      const changes = [];
      next.onChange((user) => changes.push(user));
      assert.equal(next.user(), null, 'restoring is asynchronous: await bk.ready');
      await next.ready;
      assert.deepEqual(next.user(), first.user());
      assert.deepEqual(changes, [first.user()]);
      assert.equal(await next.accessToken(), 'at-1');
    });
  }

  test('the default keeps tokens in memory only', async () => {
    const bk = client({ fetch: rotatingServer(), autoRefresh: false });
    await bk.login({ data: ALICE });
    const other = client({ fetch: rotatingServer(), autoRefresh: false });
    await other.ready;
    assert.equal(other.user(), null);
  });

  test('rotation is written through to the storage', async () => {
    const storage = mapStorage();
    const bk = client({ fetch: rotatingServer(), storage, autoRefresh: false });
    await bk.login({ data: ALICE });
    await bk.refresh();
    assert.equal(JSON.parse(storage.values.get(KEY)).refreshToken, 'rt-2');
  });

  test('a page that shares the storage adopts a rotation done elsewhere', async () => {
    const storage = mapStorage();
    const fetch = rotatingServer();
    const tabA = client({ fetch, storage, autoRefresh: false });
    await tabA.login({ data: ALICE });
    const tabB = client({ fetch, storage, autoRefresh: false });
    await tabB.ready;
    await tabA.refresh(); // rt-1 → rt-2, stored
    // tabB still holds rt-1 in memory: presenting it would be a reuse.
    await tabB.refresh();
    const presented = fetch.calls.filter((c) => c.params?.grant_type === 'refresh_token')
      .map((c) => c.params.refresh_token);
    assert.deepEqual(presented, ['rt-1']);
    assert.equal(await tabB.accessToken(), 'at-2');
    assert.equal(tabB.user().externalId, '1001');
  });

  test('a stored session past its refresh lifetime is dropped', async () => {
    const storage = mapStorage();
    storage.values.set(KEY, JSON.stringify({
      accessToken: 'a', refreshToken: 'r', issuedAt: 0, expiresAt: 1000, refreshExpiresAt: 2000,
      user: { id: 'u', externalId: 'x' },
    }));
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')), storage });
    await bk.ready;
    assert.equal(bk.user(), null);
    assert.equal(storage.values.has(KEY), false);
  });

  test('garbage in the storage is ignored', async () => {
    const storage = mapStorage();
    storage.values.set(KEY, '{not json');
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')), storage });
    await bk.ready;
    assert.equal(bk.user(), null);
  });

  describe('web storage helpers', () => {
    afterEach(() => {
      delete globalThis.localStorage;
      delete globalThis.sessionStorage;
    });

    function fakeWebStorage() {
      const values = new Map();
      return {
        values,
        getItem: (k) => (values.has(k) ? values.get(k) : null),
        setItem: (k, v) => values.set(k, String(v)),
        removeItem: (k) => values.delete(k),
      };
    }

    test('localStorageAdapter and sessionStorageAdapter use the browser\'s storages', async () => {
      globalThis.localStorage = fakeWebStorage();
      globalThis.sessionStorage = fakeWebStorage();
      assert.equal(Bridgekeeper.localStorageAdapter, localStorageAdapter);
      assert.equal(Bridgekeeper.sessionStorageAdapter, sessionStorageAdapter);
      const bk = client({ fetch: rotatingServer(), storage: Bridgekeeper.localStorageAdapter,
        autoRefresh: false });
      await bk.login({ data: ALICE });
      assert.equal(JSON.parse(globalThis.localStorage.values.get(KEY)).accessToken, 'at-1');
      sessionStorageAdapter.set('k', 'v');
      assert.equal(sessionStorageAdapter.get('k'), 'v');
      sessionStorageAdapter.remove('k');
      assert.equal(globalThis.sessionStorage.values.size, 0);
    });
  });
});

describe('logout()', () => {
  function server(logoutAnswer = () => json(204, null)) {
    return fakeFetch((call) => (call.path.endsWith('/logout') ? logoutAnswer(call)
      : json(200, tokens())));
  }

  test('revokes with the refresh token and the Bearer, clears everything, tells onChange', async () => {
    const storage = mapStorage();
    const fetch = server();
    const bk = client({ fetch, storage, autoRefresh: false });
    await bk.login({ data: ALICE });
    const changes = [];
    bk.onChange((user, error) => changes.push([user, error]));
    await bk.logout();
    const [call] = fetch.to('/logout');
    assert.equal(call.method, 'POST');
    assert.equal(call.headers.get('content-type'), 'application/json');
    assert.deepEqual(call.params, { refresh_token: 'rt-1' });
    assert.equal(call.headers.get('authorization'), 'Bearer at-1');
    assert.equal(bk.user(), null);
    assert.equal(storage.values.has(KEY), false);
    assert.deepEqual(changes, [[null, undefined]]);
    await assert.rejects(bk.me(), { reason: 'login_required' });
  });

  test('an expired access token is not sent, the refresh token alone identifies the session',
    async (t) => {
      t.mock.timers.enable({ apis: ['Date', 'setTimeout'], now: 1_000_000 });
      const fetch = server();
      const bk = client({ fetch, autoRefresh: false });
      await bk.login({ data: ALICE });
      t.mock.timers.tick(900_000);
      await bk.logout();
      const [call] = fetch.to('/logout');
      assert.equal(call.headers.get('authorization'), null);
      assert.deepEqual(call.params, { refresh_token: 'rt-1' });
    });

  test('a session that had already ended at Bridgekeeper (401) is logged out quietly', async () => {
    const bk = client({ fetch: server(() => apiError(401, 'invalid_token', 'session_revoked')),
      autoRefresh: false });
    await bk.login({ data: ALICE });
    await bk.logout();
    assert.equal(bk.user(), null);
  });

  test('a network failure still logs out here, and says so', async () => {
    const bk = client({ fetch: server(() => { throw new TypeError('offline'); }),
      autoRefresh: false });
    await bk.login({ data: ALICE });
    const failure = await rejection(bk.logout());
    assert.equal(failure.error, 'network_error');
    assert.equal(bk.user(), null);
  });

  test('without a session there is nothing to do', async () => {
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    await bk.logout();
  });

  test('a refresh in flight finishes before the logout revokes its result', async () => {
    let release;
    const fetch = fakeFetch(async (call) => {
      if (call.params?.grant_type === 'refresh_token') {
        await new Promise((resolve) => { release = resolve; });
        return json(200, tokens(2));
      }
      return call.path.endsWith('/logout') ? json(204, null) : json(200, tokens());
    });
    const bk = client({ fetch, autoRefresh: false });
    await bk.login({ data: ALICE });
    const refreshing = bk.refresh();
    const loggingOut = bk.logout();
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await refreshing;
    await loggingOut;
    assert.deepEqual(fetch.to('/logout')[0].params, { refresh_token: 'rt-2' });
    assert.equal(bk.user(), null);
  });
});
