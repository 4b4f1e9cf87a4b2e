// A fake Bridgekeeper for the unit tests: a fetch that records calls and
// answers like the service's contract (docs/protocol.md §5–§7). Not a test file itself.

import { createHash } from 'node:crypto';

import { Bridgekeeper } from '../src/bridgekeeper.js';

export const APP_ID = 'abcd1234';
export const BASE = 'https://bk.test';
export const REDIRECT = 'https://app.test/callback';
export const USER = { id: '5d0a1a4e-0000-4000-8000-000000000001', external_id: '1001' };

/** base64url(sha256(verifier)), computed independently of the SDK. */
export const s256 = (verifier) => createHash('sha256').update(verifier).digest('base64url');

export function json(status, body, headers = {}) {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', 'X-Request-ID': 'req-header', ...headers },
  });
}

export function apiError(status, error, reason, description = '', headers = {}) {
  return json(status, { error, error_description: description, reason, request_id: 'req-body' },
    headers);
}

export function tokens(n = 1, overrides = {}) {
  return {
    access_token: `at-${n}`,
    token_type: 'Bearer',
    expires_in: 900,
    refresh_token: `rt-${n}`,
    refresh_expires_in: 30 * 24 * 3600,
    user: USER,
    ...overrides,
  };
}

/** A fetch whose answers come from `handler(call, callNumber)`; calls are recorded. */
export function fakeFetch(handler) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const parsed = new URL(url);
    const headers = new Headers(init.headers);
    let params = null;
    if (headers.get('content-type') === 'application/json') params = JSON.parse(init.body);
    if (headers.get('content-type') === 'application/x-www-form-urlencoded') {
      params = Object.fromEntries(new URLSearchParams(init.body));
    }
    const call = { method: init.method ?? 'GET', path: parsed.pathname, headers, params, init };
    calls.push(call);
    return handler(call, calls.length);
  };
  fetch.calls = calls;
  fetch.to = (suffix) => calls.filter((c) => c.path === `/v1/apps/${APP_ID}${suffix}`);
  return fetch;
}

/**
 * A stateful token endpoint with rotation: each refresh token works once and
 * its successor is the next number; an old one is `refresh_reused`.
 */
export function rotatingServer({ expiresIn = 900, onExtra } = {}) {
  let current = 1;
  const fetch = fakeFetch((call) => {
    if (call.path.endsWith('/login/custom') || call.path.endsWith('/login/custom-token')) {
      current = 1;
      return json(200, tokens(1, { expires_in: expiresIn }));
    }
    if (call.path.endsWith('/token') && call.params.grant_type === 'refresh_token') {
      if (call.params.refresh_token !== `rt-${current}`) {
        return apiError(400, 'invalid_grant', 'refresh_reused', 'the refresh token was used already');
      }
      current += 1;
      return json(200, tokens(current, { expires_in: expiresIn }));
    }
    if (onExtra) return onExtra(call);
    return apiError(404, 'not_found', 'not_found');
  });
  return fetch;
}

export function client(options = {}) {
  return Bridgekeeper({ appId: APP_ID, baseUrl: BASE, redirectUri: REDIRECT, ...options });
}

/** A storage adapter over a Map; async unless `sync`. */
export function mapStorage({ sync = false } = {}) {
  const values = new Map();
  const wrap = (fn) => (sync ? fn : async (...args) => fn(...args));
  return {
    values,
    get: wrap((key) => (values.has(key) ? values.get(key) : null)),
    set: wrap((key, value) => { values.set(key, value); }),
    remove: wrap((key) => { values.delete(key); }),
  };
}

/** Let pending promise chains (fetch, response bodies) settle. */
export async function settle(rounds = 20) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** The rejection of a promise (fails when it resolves). */
export async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, the promise resolved');
}
