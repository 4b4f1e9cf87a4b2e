// Refresh: rotation, one request in flight, the automatic timer (mock timers),
// and the answers that end a session (docs/protocol.md §6).

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';

import {
  apiError, client, fakeFetch, json, rejection, rotatingServer, settle, tokens,
} from './fake-bridgekeeper.js';

const ALICE = { id: 'alice', passphrase: 'wonderland' };
const T0 = Date.UTC(2030, 0, 1);

const refreshes = (fetch) => fetch.calls.filter((c) => c.params?.grant_type === 'refresh_token');

describe('refresh and rotation', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }));
  afterEach(() => mock.timers.reset());

  test('a fresh access token is answered without a request', async () => {
    const fetch = rotatingServer();
    const bk = client({ fetch, autoRefresh: false });
    await bk.login({ data: ALICE });
    mock.timers.tick(800_000);
    assert.equal(await bk.accessToken(), 'at-1');
    assert.equal(refreshes(fetch).length, 0);
  });

  test('rotation: every refresh presents the newest refresh token', async () => {
    const fetch = rotatingServer();
    const bk = client({ fetch, autoRefresh: false });
    await bk.login({ data: ALICE });
    await bk.refresh();
    await bk.refresh();
    assert.deepEqual(refreshes(fetch).map((c) => c.params.refresh_token), ['rt-1', 'rt-2']);
    assert.equal(refreshes(fetch)[0].headers.get('content-type'),
      'application/x-www-form-urlencoded');
    assert.equal(await bk.accessToken(), 'at-3');
    assert.equal(bk.user().externalId, '1001');
  });

  test('an access token about to expire is refreshed first', async () => {
    const fetch = rotatingServer();
    const bk = client({ fetch, autoRefresh: false });
    await bk.login({ data: ALICE });
    mock.timers.tick(900_000 - 59_000); // inside the last minute
    assert.equal(await bk.accessToken(), 'at-2');
    assert.equal(refreshes(fetch).length, 1);
  });

  test('concurrent callers share one refresh: never two of the same token', async () => {
    const fetch = rotatingServer();
    const bk = client({ fetch, autoRefresh: false });
    await bk.login({ data: ALICE });
    mock.timers.tick(900_000); // expired
    const answers = await Promise.all([
      bk.accessToken(), bk.accessToken(), bk.me().catch(() => 'me'), bk.refresh(),
      bk.accessToken(),
    ]);
    assert.equal(refreshes(fetch).length, 1);
    assert.deepEqual([answers[0], answers[1], answers[4]], ['at-2', 'at-2', 'at-2']);
    // The next refresh is a new request again, with the rotated token.
    await bk.refresh();
    assert.deepEqual(refreshes(fetch).map((c) => c.params.refresh_token), ['rt-1', 'rt-2']);
  });

  for (const reason of ['refresh_reused', 'session_revoked', 'refresh_invalid']) {
    test(`${reason} clears the session and tells onChange(null)`, async () => {
      const fetch = fakeFetch((call) => (call.params?.grant_type === 'refresh_token'
        ? apiError(400, 'invalid_grant', reason) : json(200, tokens())));
      const bk = client({ fetch, autoRefresh: false });
      await bk.login({ data: ALICE });
      const changes = [];
      bk.onChange((user, error) => changes.push([user, error?.reason]));
      const failure = await rejection(bk.refresh());
      assert.equal(failure.error, 'invalid_grant');
      assert.equal(failure.reason, reason);
      assert.equal(failure.status, 400);
      assert.equal(bk.user(), null);
      assert.deepEqual(changes, [[null, reason]]);
      await assert.rejects(bk.accessToken(), { reason: 'login_required' });
    });
  }

  test('a failed refresh for another cause keeps the session', async () => {
    const fetch = fakeFetch((call) => (call.params?.grant_type === 'refresh_token'
      ? apiError(503, 'temporarily_unavailable', 'store_unavailable') : json(200, tokens())));
    const bk = client({ fetch, autoRefresh: false });
    await bk.login({ data: ALICE });
    await assert.rejects(bk.refresh(), { reason: 'store_unavailable', status: 503 });
    assert.equal(bk.user().externalId, '1001');
  });

  test('a session past its refresh lifetime ends without a request', async () => {
    const fetch = rotatingServer();
    const bk = client({ fetch, autoRefresh: false });
    await bk.login({ data: ALICE });
    mock.timers.tick(30 * 24 * 3600 * 1000);
    await assert.rejects(bk.accessToken(), { error: 'invalid_grant', reason: 'refresh_invalid' });
    assert.equal(refreshes(fetch).length, 0);
    assert.equal(bk.user(), null);
  });
});

describe('the automatic refresh timer', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }));
  afterEach(() => mock.timers.reset());

  test('refreshes 60 s before a 900 s token expires, then again for the next one', async () => {
    const fetch = rotatingServer();
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    mock.timers.tick(840_000 - 1);
    await settle();
    assert.equal(refreshes(fetch).length, 0);
    mock.timers.tick(1);
    await settle();
    assert.equal(refreshes(fetch).length, 1);
    assert.equal(await bk.accessToken(), 'at-2');
    mock.timers.tick(840_000);
    await settle();
    assert.deepEqual(refreshes(fetch).map((c) => c.params.refresh_token), ['rt-1', 'rt-2']);
  });

  test('a 60 s token is refreshed 10 % of its lifetime early (54 s)', async () => {
    const fetch = rotatingServer({ expiresIn: 60 });
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    mock.timers.tick(53_999);
    await settle();
    assert.equal(refreshes(fetch).length, 0);
    mock.timers.tick(1);
    await settle();
    assert.equal(refreshes(fetch).length, 1);
  });

  test('a network failure is retried after 1 s, then 2 s', async () => {
    let failures = 2;
    const fetch = fakeFetch((call) => {
      if (call.params?.grant_type !== 'refresh_token') return json(200, tokens());
      if (failures > 0) {
        failures -= 1;
        throw new TypeError('fetch failed');
      }
      return json(200, tokens(2));
    });
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    mock.timers.tick(840_000);
    await settle();
    assert.equal(refreshes(fetch).length, 1);
    mock.timers.tick(1_000);
    await settle();
    assert.equal(refreshes(fetch).length, 2);
    mock.timers.tick(1_999);
    await settle();
    assert.equal(refreshes(fetch).length, 2);
    mock.timers.tick(1);
    await settle();
    assert.equal(refreshes(fetch).length, 3);
    assert.equal(await bk.accessToken(), 'at-2');
    assert.deepEqual(refreshes(fetch).map((c) => c.params.refresh_token), ['rt-1', 'rt-1', 'rt-1']);
  });

  test('a 429 is retried no sooner than its Retry-After', async () => {
    let limited = true;
    const fetch = fakeFetch((call) => {
      if (call.params?.grant_type !== 'refresh_token') return json(200, tokens());
      if (limited) {
        limited = false;
        return apiError(429, 'temporarily_unavailable', 'rate_limited', '', { 'Retry-After': '20' });
      }
      return json(200, tokens(2));
    });
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    mock.timers.tick(840_000);
    await settle();
    mock.timers.tick(19_999);
    await settle();
    assert.equal(refreshes(fetch).length, 1);
    mock.timers.tick(1);
    await settle();
    assert.equal(refreshes(fetch).length, 2);
  });

  test('a reuse answer in the background ends the session with onChange(null)', async () => {
    const fetch = fakeFetch((call) => (call.params?.grant_type === 'refresh_token'
      ? apiError(400, 'invalid_grant', 'refresh_reused') : json(200, tokens())));
    const bk = client({ fetch });
    const changes = [];
    bk.onChange((user, error) => changes.push([user && user.externalId, error?.reason]));
    await bk.login({ data: ALICE });
    mock.timers.tick(840_000);
    await settle();
    assert.deepEqual(changes, [['1001', undefined], [null, 'refresh_reused']]);
    assert.equal(bk.user(), null);
    mock.timers.tick(3_600_000);
    await settle();
    assert.equal(refreshes(fetch).length, 1, 'no retry after the session ended');
  });

  test('logout stops the timer', async () => {
    const fetch = rotatingServer({ onExtra: () => json(204, null) });
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    await bk.logout();
    mock.timers.tick(3_600_000);
    await settle();
    assert.equal(refreshes(fetch).length, 0);
  });
});
