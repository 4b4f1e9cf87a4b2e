// Redirect login: PKCE, state, the error return, the code exchange (docs/protocol.md §4, §6).

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { BridgekeeperError, pkceChallenge } from '../src/bridgekeeper.js';
import {
  APP_ID, BASE, REDIRECT, USER, apiError, client, fakeFetch, json, mapStorage, rejection,
  s256, tokens,
} from './fake-bridgekeeper.js';

/** Start a redirect login; returns the client, its fetch and the authorize URL. */
async function started(fetchHandler = () => json(200, tokens())) {
  const fetch = fakeFetch(fetchHandler);
  const transactions = mapStorage({ sync: true });
  const navigated = [];
  const bk = client({ fetch, transactionStorage: transactions, navigate: (u) => navigated.push(u) });
  await bk.login();
  assert.equal(navigated.length, 1);
  return { bk, fetch, transactions, url: new URL(navigated[0]) };
}

const back = (query) => `${REDIRECT}?${new URLSearchParams(query)}`;

describe('login() redirects with PKCE and a state', () => {
  test('the authorize URL carries the contract parameters', async () => {
    const { url, fetch } = await started();
    assert.equal(url.origin + url.pathname, `${BASE}/v1/apps/${APP_ID}/authorize`);
    const params = url.searchParams;
    assert.equal(params.get('redirect_uri'), REDIRECT);
    assert.equal(params.get('code_challenge_method'), 'S256');
    assert.match(params.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    assert.match(params.get('state'), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(fetch.calls.length, 0, 'nothing is fetched before the user returns');
  });

  test('code_challenge is base64url(sha256(verifier)) of the stored verifier', async () => {
    const { url, transactions } = await started();
    const stored = JSON.parse(transactions.values.get(`bridgekeeper:${APP_ID}:login`));
    assert.match(stored.verifier, /^[A-Za-z0-9_-]{43,128}$/);
    assert.equal(url.searchParams.get('code_challenge'), s256(stored.verifier));
    assert.equal(stored.state, url.searchParams.get('state'));
    assert.equal(stored.redirectUri, REDIRECT);
  });

  test('pkceChallenge agrees with node:crypto on any verifier', async () => {
    for (const verifier of ['a'.repeat(43), 'Zz0-_'.repeat(20), 'x'.repeat(128)]) {
      assert.equal(await pkceChallenge(verifier), s256(verifier));
    }
  });

  test('every login gets a new verifier and state', async () => {
    const first = await started();
    const second = await started();
    assert.notEqual(first.url.searchParams.get('state'), second.url.searchParams.get('state'));
    assert.notEqual(first.url.searchParams.get('code_challenge'),
      second.url.searchParams.get('code_challenge'));
  });

  test('a client without redirectUri cannot start a redirect login', async () => {
    const bk = client({ redirectUri: undefined, fetch: fakeFetch(() => json(200, {})),
      navigate: () => assert.fail('navigated') });
    await assert.rejects(bk.login(), TypeError);
  });
});

describe('login({hosted: true}) opens the hosted sign-in form', () => {
  test('the same contract parameters, at the form\'s path', async () => {
    const fetch = fakeFetch(() => json(200, tokens()));
    const transactions = mapStorage({ sync: true });
    const navigated = [];
    const bk = client({ fetch, transactionStorage: transactions,
      navigate: (u) => navigated.push(u) });
    await bk.login({ hosted: true });
    assert.equal(navigated.length, 1);
    const url = new URL(navigated[0]);
    assert.equal(url.origin + url.pathname, `${BASE}/v1/apps/${APP_ID}/login`);
    const stored = JSON.parse(transactions.values.get(`bridgekeeper:${APP_ID}:login`));
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      redirect_uri: REDIRECT, code_challenge: s256(stored.verifier),
      code_challenge_method: 'S256', state: stored.state,
    });
    // The form's 303 lands on redirectUri like authorize's callback: same finish.
    const user = await bk.handleRedirect(back({ code: 'form-code', state: stored.state }));
    assert.equal(user.externalId, '1001');
    assert.equal(fetch.calls[0].params.code_verifier, stored.verifier);
  });

  test('the Ionic call passes hosted along; the default stays authorize', async () => {
    const navigated = [];
    const bk = client({ fetch: fakeFetch(() => json(200, tokens())),
      navigate: (u) => navigated.push(u) });
    await bk.login('custom', {}, { hosted: true });
    await bk.login({ hosted: false });
    assert.deepEqual(navigated.map((u) => new URL(u).pathname),
      [`/v1/apps/${APP_ID}/login`, `/v1/apps/${APP_ID}/authorize`]);
  });
});

describe('handleRedirect()', () => {
  test('exchanges the code with the verifier and logs the user in', async () => {
    const { bk, fetch, url, transactions } = await started();
    const changes = [];
    bk.onChange((user) => changes.push(user));
    const state = url.searchParams.get('state');
    const user = await bk.handleRedirect(back({ code: 'the-code', state }));
    assert.deepEqual(user, { id: USER.id, externalId: '1001' });
    assert.deepEqual(bk.user(), user);
    assert.deepEqual(changes, [user]);
    const [exchange] = fetch.calls;
    assert.equal(exchange.method, 'POST');
    assert.equal(exchange.path, `/v1/apps/${APP_ID}/token`);
    assert.equal(exchange.headers.get('content-type'), 'application/x-www-form-urlencoded');
    const stored = { verifier: exchange.params.code_verifier };
    assert.deepEqual(exchange.params, {
      grant_type: 'authorization_code', code: 'the-code', redirect_uri: REDIRECT,
      code_verifier: stored.verifier,
    });
    assert.equal(s256(stored.verifier), url.searchParams.get('code_challenge'));
    assert.equal(exchange.init.credentials, 'omit');
    assert.equal(transactions.values.size, 0, 'the transaction is used once');
    assert.equal(await bk.accessToken(), 'at-1');
  });

  test('the same redirect handled twice is refused without a second exchange', async () => {
    const { bk, fetch, url } = await started();
    const href = back({ code: 'c', state: url.searchParams.get('state') });
    await bk.handleRedirect(href);
    const error = await rejection(bk.handleRedirect(href));
    assert.equal(error.reason, 'state_mismatch');
    assert.equal(fetch.calls.length, 1);
  });

  test('a state that differs is rejected and no code is exchanged', async () => {
    const { bk, fetch, url } = await started();
    const state = url.searchParams.get('state');
    const forged = `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`;
    const error = await rejection(bk.handleRedirect(back({ code: 'attacker-code', state: forged })));
    assert.ok(error instanceof BridgekeeperError);
    assert.equal(error.error, 'invalid_request');
    assert.equal(error.reason, 'state_mismatch');
    assert.equal(error.status, null);
    assert.equal(fetch.calls.length, 0);
    assert.equal(bk.user(), null);
    // The login in progress can still finish.
    await bk.handleRedirect(back({ code: 'c', state }));
    assert.equal(bk.user().externalId, '1001');
  });

  test('a missing state, or no login started, is rejected', async () => {
    const { bk } = await started();
    assert.equal((await rejection(bk.handleRedirect(back({ code: 'c' })))).reason, 'state_mismatch');
    const fresh = client({ fetch: fakeFetch(() => assert.fail('fetched')),
      transactionStorage: mapStorage() });
    const error = await rejection(fresh.handleRedirect(back({ code: 'c', state: 'x'.repeat(43) })));
    assert.equal(error.reason, 'state_mismatch');
  });

  test('an error return surfaces error, reason and description', async () => {
    const { bk, fetch, url } = await started();
    const error = await rejection(bk.handleRedirect(back({
      error: 'access_denied', error_description: 'Unknown user or wrong passphrase',
      reason: 'tenant_denied', state: url.searchParams.get('state'),
    })));
    assert.ok(error instanceof BridgekeeperError);
    assert.equal(error.error, 'access_denied');
    assert.equal(error.reason, 'tenant_denied');
    assert.equal(error.description, 'Unknown user or wrong passphrase');
    assert.equal(error.message, 'Unknown user or wrong passphrase');
    assert.equal(fetch.calls.length, 0);
    assert.equal(bk.user(), null);
  });

  test('an error return with a foreign state is a state mismatch, not the error', async () => {
    const { bk } = await started();
    const error = await rejection(bk.handleRedirect(back({
      error: 'access_denied', reason: 'tenant_denied', state: 'not-ours' })));
    assert.equal(error.reason, 'state_mismatch');
  });

  test('a refused exchange rejects with the token endpoint\'s error', async () => {
    const { bk, url } = await started(() => apiError(400, 'invalid_grant', 'pkce_invalid',
      'code_verifier does not match'));
    const error = await rejection(bk.handleRedirect(back({
      code: 'c', state: url.searchParams.get('state') })));
    assert.equal(error.error, 'invalid_grant');
    assert.equal(error.reason, 'pkce_invalid');
    assert.equal(error.status, 400);
    assert.equal(error.requestId, 'req-body');
    assert.equal(bk.user(), null);
  });

  describe('in a browser', () => {
    const saved = {};
    afterEach(() => {
      for (const name of ['location', 'history']) {
        if (saved[name] === undefined) delete globalThis[name];
        else globalThis[name] = saved[name];
      }
    });

    test('the code and state leave the address bar', async () => {
      const { bk, url } = await started();
      const replaced = [];
      saved.location = globalThis.location;
      saved.history = globalThis.history;
      const href = `${REDIRECT}?tab=home&code=c&state=${url.searchParams.get('state')}#top`;
      globalThis.location = { href };
      globalThis.history = { state: { page: 1 },
        replaceState: (...args) => replaced.push(args) };
      assert.equal(bk.isRedirectCallback(), true);
      await bk.handleRedirect();
      assert.deepEqual(replaced, [[{ page: 1 }, '', `${REDIRECT}?tab=home#top`]]);
    });
  });

  test('isRedirectCallback tells the return from other pages', () => {
    const bk = client({ fetch: fakeFetch(() => json(200, {})) });
    assert.equal(bk.isRedirectCallback(back({ code: 'c', state: 's' })), true);
    assert.equal(bk.isRedirectCallback(back({ error: 'access_denied', state: 's' })), true);
    assert.equal(bk.isRedirectCallback(back({ state: 's' })), false);
    assert.equal(bk.isRedirectCallback('https://app.test/other?code=c&state=s'), false);
  });
});

describe('options', () => {
  test('bad options are refused at once', () => {
    assert.throws(() => client({ appId: 'ABC' }), TypeError);
    assert.throws(() => client({ baseUrl: 'bk.test' }), TypeError);
    assert.throws(() => client({ redirectUri: 'not a url' }), TypeError);
    assert.throws(() => client({ storage: { get() {} } }), TypeError);
    assert.throws(() => client({ fetch: 'nope' }), TypeError);
  });

  test('a trailing slash on baseUrl is ignored', async () => {
    const fetch = fakeFetch(() => json(200, tokens()));
    const bk = client({ baseUrl: `${BASE}/`, fetch });
    await bk.loginWithCustomToken('t');
    assert.equal(fetch.calls[0].path, `/v1/apps/${APP_ID}/login/custom-token`);
  });
});
