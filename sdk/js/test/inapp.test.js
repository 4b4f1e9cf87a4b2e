// In-app form and custom-token logins, /me, and how every refusal surfaces
// (docs/protocol.md §5, §7): a refused login is a rejected promise, never silence.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Bridgekeeper, BridgekeeperError } from '../src/bridgekeeper.js';
import {
  APP_ID, USER, apiError, client, fakeFetch, json, rejection, tokens,
} from './fake-bridgekeeper.js';

const ALICE = { id: 'alice', passphrase: 'wonderland' };

describe('login({data}): the in-app form', () => {
  test('posts the fields as JSON and logs the user in', async () => {
    const fetch = fakeFetch(() => json(200, tokens()));
    const bk = client({ fetch });
    const changes = [];
    bk.onChange((user) => changes.push(user));
    const user = await bk.login({ data: ALICE });
    assert.deepEqual(user, { id: USER.id, externalId: '1001' });
    assert.deepEqual(bk.user(), user);
    assert.deepEqual(changes, [user]);
    const [call] = fetch.calls;
    assert.equal(call.method, 'POST');
    assert.equal(call.path, `/v1/apps/${APP_ID}/login/custom`);
    assert.equal(call.headers.get('content-type'), 'application/json');
    assert.equal(call.headers.get('authorization'), null);
    assert.deepEqual(call.params, { data: ALICE });
  });

  for (const [status, error, reason] of [
    [401, 'access_denied', 'tenant_denied'],
    [403, 'access_denied', 'user_disabled'],
    [403, 'unauthorized_client', 'feature_disabled'],
    [502, 'server_error', 'tenant_error'],
    [504, 'server_error', 'tenant_unreachable'],
    [503, 'temporarily_unavailable', 'store_unavailable'],
  ]) {
    test(`${status} ${reason} rejects with the contract's error`, async () => {
      const bk = client({ fetch: fakeFetch(() => apiError(status, error, reason, 'said so')) });
      const changes = [];
      bk.onChange((user) => changes.push(user));
      const failure = await rejection(bk.login({ data: ALICE }));
      assert.ok(failure instanceof BridgekeeperError);
      assert.ok(failure instanceof Error);
      assert.equal(failure.name, 'BridgekeeperError');
      assert.equal(failure.status, status);
      assert.equal(failure.error, error);
      assert.equal(failure.reason, reason);
      assert.equal(failure.description, 'said so');
      assert.equal(failure.requestId, 'req-body');
      assert.equal(bk.user(), null);
      assert.deepEqual(changes, []);
    });
  }

  test('429 rate_limited carries retryAfter from Retry-After', async () => {
    const bk = client({ fetch: fakeFetch(() => apiError(429, 'temporarily_unavailable',
      'rate_limited', 'too many requests, retry later', { 'Retry-After': '7' })) });
    const failure = await rejection(bk.login({ data: ALICE }));
    assert.equal(failure.reason, 'rate_limited');
    assert.equal(failure.status, 429);
    assert.equal(failure.retryAfter, 7);
  });

  test('a network failure rejects with network_error', async () => {
    const bk = client({ fetch: async () => { throw new TypeError('fetch failed'); } });
    const failure = await rejection(bk.login({ data: ALICE }));
    assert.equal(failure.error, 'network_error');
    assert.equal(failure.reason, 'network_error');
    assert.equal(failure.status, null);
    assert.ok(failure.cause instanceof TypeError);
  });

  test('no answer within timeoutMs rejects with network_error / timeout', async () => {
    const hanging = (url, init) => new Promise((_, reject) => {
      init.signal.addEventListener('abort', () => reject(init.signal.reason));
    });
    const bk = client({ fetch: hanging, timeoutMs: 30 });
    // The SDK's own timers never hold a process open (a real request would).
    const alive = setInterval(() => {}, 1000);
    const failure = await rejection(bk.login({ data: ALICE })).finally(() => clearInterval(alive));
    assert.equal(failure.error, 'network_error');
    assert.equal(failure.reason, 'timeout');
  });

  test('an answer that is not the contract (a proxy\'s HTML 502) is server_error', async () => {
    const bk = client({ fetch: fakeFetch(() => new Response('<h1>Bad gateway</h1>', {
      status: 502, headers: { 'Content-Type': 'text/html', 'X-Request-ID': 'req-proxy' } })) });
    const failure = await rejection(bk.login({ data: ALICE }));
    assert.equal(failure.error, 'server_error');
    assert.equal(failure.reason, 'unexpected_response');
    assert.equal(failure.status, 502);
    assert.equal(failure.requestId, 'req-proxy');
  });

  test('an incomplete token response is refused', async () => {
    const bk = client({ fetch: fakeFetch(() => json(200, { access_token: 'a' })) });
    const failure = await rejection(bk.login({ data: ALICE }));
    assert.equal(failure.reason, 'unexpected_response');
    assert.equal(bk.user(), null);
  });

  test('the Ionic Cloud call login(\'custom\', loginData, options) still works', async () => {
    const fetch = fakeFetch(() => json(200, tokens()));
    const bk = client({ fetch, navigate: () => assert.fail('navigated') });
    const user = await bk.login('custom', ALICE, { inAppBrowserOptions: { hidden: true } });
    assert.equal(user.externalId, '1001');
    assert.deepEqual(fetch.to('/login/custom')[0].params, { data: ALICE });
    const navigated = [];
    const redirecting = client({ fetch, navigate: (url) => navigated.push(url) });
    await redirecting.login('custom');
    assert.match(navigated[0], /\/authorize\?/);
  });

  test('data must be an object', async () => {
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    await assert.rejects(bk.login({ data: 'alice' }), TypeError);
    await assert.rejects(bk.login({ data: ['alice'] }), TypeError);
  });
});

describe('loginWithCustomToken()', () => {
  test('posts {token} and logs the user in', async () => {
    const fetch = fakeFetch(() => json(200, tokens(1, { user: { id: 'u-2', external_id: 'sky-7' } })));
    const bk = Bridgekeeper({ appId: APP_ID, baseUrl: 'https://bk.test', fetch });
    assert.deepEqual(await bk.loginWithCustomToken('signed.jwt.here'),
      { id: 'u-2', externalId: 'sky-7' });
    assert.equal(fetch.calls[0].path, `/v1/apps/${APP_ID}/login/custom-token`);
    assert.deepEqual(fetch.calls[0].params, { token: 'signed.jwt.here' });
  });

  test('a refused token rejects with invalid_grant and its reason', async () => {
    const bk = client({ fetch: fakeFetch(() => apiError(400, 'invalid_grant', 'token_expired')) });
    const failure = await rejection(bk.loginWithCustomToken('old.jwt.token'));
    assert.equal(failure.error, 'invalid_grant');
    assert.equal(failure.reason, 'token_expired');
    assert.equal(failure.message, 'token_expired', 'the reason when there is no description');
  });

  test('a missing token is a TypeError, not a request', async () => {
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    await assert.rejects(bk.loginWithCustomToken(''), TypeError);
  });
});

describe('me()', () => {
  test('sends the Bearer access token and answers the profile', async () => {
    const profile = { id: USER.id, app_id: APP_ID, external_id: '1001',
      custom: { plan: 'pro' }, profile: {}, created_at: null, last_login_at: null };
    const fetch = fakeFetch((call) => (call.path.endsWith('/me') ? json(200, profile)
      : json(200, tokens())));
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    assert.deepEqual(await bk.me(), profile);
    const [meCall] = fetch.to('/me');
    assert.equal(meCall.method, 'GET');
    assert.equal(meCall.headers.get('authorization'), 'Bearer at-1');
  });

  test('without a session it rejects with login_required', async () => {
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    const failure = await rejection(bk.me());
    assert.equal(failure.error, 'login_required');
    assert.equal(failure.reason, 'login_required');
    await assert.rejects(bk.accessToken(), { reason: 'login_required' });
  });

  test('a 401 session_revoked ends the session here too', async () => {
    const fetch = fakeFetch((call) => (call.path.endsWith('/me')
      ? apiError(401, 'invalid_token', 'session_revoked', 'the session was revoked',
        { 'WWW-Authenticate': 'Bearer error="invalid_token"' })
      : json(200, tokens())));
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    const changes = [];
    bk.onChange((user, error) => changes.push([user, error?.reason]));
    const failure = await rejection(bk.me());
    assert.equal(failure.status, 401);
    assert.equal(failure.reason, 'session_revoked');
    assert.equal(bk.user(), null);
    assert.deepEqual(changes, [[null, 'session_revoked']]);
  });

  test('a 401 for an expired token refreshes once and asks again', async () => {
    let meCalls = 0;
    const fetch = fakeFetch((call) => {
      if (call.path.endsWith('/me')) {
        meCalls += 1;
        return meCalls === 1
          ? apiError(401, 'invalid_token', 'claims_invalid', 'the access token is invalid or expired')
          : json(200, { id: USER.id });
      }
      if (call.params.grant_type === 'refresh_token') return json(200, tokens(2));
      return json(200, tokens(1));
    });
    const bk = client({ fetch });
    await bk.login({ data: ALICE });
    assert.deepEqual(await bk.me(), { id: USER.id });
    assert.deepEqual(fetch.to('/me').map((c) => c.headers.get('authorization')),
      ['Bearer at-1', 'Bearer at-2']);
  });
});
