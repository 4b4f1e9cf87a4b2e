// Popup login with a stand-in for window.open (the real thing runs in
// Chromium: tests/browser/test_js_sdk_demo.py).

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import {
  APP_ID, BASE, REDIRECT, client, fakeFetch, json, rejection, s256, tokens,
} from './fake-bridgekeeper.js';

/** A popup whose location cannot be read while it shows another origin. */
function fakePopup() {
  let href = 'about:blank';
  let foreign = false;
  const popup = {
    closed: false,
    opened: [],
    close() { popup.closed = true; },
    location: {
      get href() {
        if (foreign) throw new DOMException('Blocked a frame', 'SecurityError');
        return href;
      },
      set href(value) {
        popup.opened.push(value);
        href = value;
        foreign = !value.startsWith(new URL(REDIRECT).origin);
      },
    },
    /** The sign-in finished: the popup is back on the app's origin. */
    land(url) { href = url; foreign = false; },
  };
  return popup;
}

const until = async (check) => {
  for (let i = 0; i < 200 && !check(); i += 1) await new Promise((r) => setTimeout(r, 5));
  assert.ok(check(), 'condition not reached');
};

describe('login({popup: true})', () => {
  afterEach(() => { delete globalThis.open; });

  test('opens the popup at once, sends it to authorize, reads the code when it lands', async () => {
    const popup = fakePopup();
    const openCalls = [];
    globalThis.open = (...args) => { openCalls.push(args); return popup; };
    const fetch = fakeFetch(() => json(200, tokens()));
    const bk = client({ fetch });
    const login = bk.login({ popup: true });
    // Synchronously, inside the click that called login(): no popup blocker.
    assert.deepEqual(openCalls.map((a) => a.slice(0, 2)), [['about:blank', `bridgekeeper-login-${APP_ID}`]]);
    await until(() => popup.opened.length === 1);
    const authorize = new URL(popup.opened[0]);
    assert.equal(authorize.origin + authorize.pathname, `${BASE}/v1/apps/${APP_ID}/authorize`);
    const state = authorize.searchParams.get('state');
    popup.land(`${REDIRECT}?code=popup-code&state=${state}`);
    assert.deepEqual(await login, { id: bk.user().id, externalId: '1001' });
    assert.equal(popup.closed, true);
    const [exchange] = fetch.calls;
    assert.equal(exchange.params.code, 'popup-code');
    assert.equal(s256(exchange.params.code_verifier), authorize.searchParams.get('code_challenge'));
  });

  test('with hosted: true the popup shows the hosted sign-in form', async () => {
    const popup = fakePopup();
    globalThis.open = () => popup;
    const fetch = fakeFetch(() => json(200, tokens()));
    const bk = client({ fetch });
    const login = bk.login({ popup: true, hosted: true });
    await until(() => popup.opened.length === 1);
    const form = new URL(popup.opened[0]);
    assert.equal(form.origin + form.pathname, `${BASE}/v1/apps/${APP_ID}/login`);
    assert.equal(form.searchParams.get('redirect_uri'), REDIRECT);
    popup.land(`${REDIRECT}?code=form-code&state=${form.searchParams.get('state')}`);
    assert.equal((await login).externalId, '1001');
    assert.equal(s256(fetch.calls[0].params.code_verifier), form.searchParams.get('code_challenge'));
  });

  test('an error return in the popup rejects with its reason', async () => {
    const popup = fakePopup();
    globalThis.open = () => popup;
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    const login = bk.login({ popup: true });
    await until(() => popup.opened.length === 1);
    const state = new URL(popup.opened[0]).searchParams.get('state');
    popup.land(`${REDIRECT}?error=access_denied&reason=tenant_denied&error_description=No&state=${state}`);
    const failure = await rejection(login);
    assert.equal(failure.error, 'access_denied');
    assert.equal(failure.reason, 'tenant_denied');
    assert.equal(popup.closed, true);
  });

  test('closing the popup rejects with popup_closed', async () => {
    const popup = fakePopup();
    globalThis.open = () => popup;
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    const login = bk.login({ popup: true });
    await until(() => popup.opened.length === 1);
    popup.close();
    const failure = await rejection(login);
    assert.equal(failure.error, 'popup_closed');
    assert.equal(bk.user(), null);
  });

  test('a blocked popup rejects with popup_blocked', async () => {
    globalThis.open = () => null;
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    const failure = await rejection(bk.login({ popup: true }));
    assert.equal(failure.error, 'popup_blocked');
  });

  test('the page inside the popup does not take the login for itself', () => {
    const bk = client({ fetch: fakeFetch(() => assert.fail('fetched')) });
    const saved = globalThis.name;
    globalThis.name = `bridgekeeper-login-${APP_ID}`;
    try {
      assert.equal(bk.isRedirectCallback(`${REDIRECT}?code=c&state=s`), false);
    } finally {
      globalThis.name = saved;
    }
  });
});
