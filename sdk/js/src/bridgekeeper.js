/*!
 * Bridgekeeper JavaScript SDK 0.1.0 — log an app's users in through Bridgekeeper.
 *
 * One ES module, no dependencies, ES2022; runs in browsers and in Node 20+.
 * The same file is published as the npm package `@bridgekeeper/js` and served
 * by Bridgekeeper at `/v1/sdk.js`. Docs: docs/js-sdk.md.
 */

export const VERSION = '0.1.0';

const APP_ID = /^[a-z0-9]{8}$/;
// Refresh this long before the access token expires (or 10 % of its lifetime
// when that is shorter: a 60 s token is refreshed 6 s before it expires).
const REFRESH_LEAD_MS = 60_000;
const REFRESH_LEAD_SHARE = 0.1;
// A Bearer token this close to its expiry is not sent to /logout (it would be
// refused); the refresh token alone identifies the session.
const BEARER_MIN_VALIDITY_MS = 5_000;
const DEFAULT_TIMEOUT_MS = 30_000;
// Bridgekeeper keeps a login's state 10 minutes: a popup open longer is given up.
const POPUP_TIMEOUT_MS = 10 * 60_000;
const POPUP_POLL_MS = 100;
const RETRY_MAX_MS = 30_000;
// Answers to a refresh that mean the session is over (docs/protocol.md §6).
const SESSION_ENDING = new Set(['refresh_reused', 'session_revoked', 'refresh_invalid']);
const REDIRECT_PARAMS = ['code', 'state', 'error', 'error_description', 'reason', 'iss'];

/** A refused or failed call: the contract's `error` and `reason`, never silent. */
export class BridgekeeperError extends Error {
  constructor({ error, reason = null, description = '', status = null, requestId = null,
    retryAfter = null, cause } = {}) {
    super(description || reason || error || 'Bridgekeeper error', cause ? { cause } : undefined);
    this.name = 'BridgekeeperError';
    this.error = error ?? 'server_error';
    this.reason = reason;
    this.description = description;
    this.status = status;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

function sdkError(error, reason, description, extra = {}) {
  return new BridgekeeperError({ error, reason, description, ...extra });
}

const loginRequired = () =>
  sdkError('login_required', 'login_required', 'no user is logged in');

// ---------------------------------------------------------------------------
// Small helpers: base64url, PKCE, constant-time comparison, storage adapters.

function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function webCrypto() {
  const crypto = globalThis.crypto;
  if (!crypto?.subtle || !crypto.getRandomValues) {
    throw new TypeError('Bridgekeeper needs WebCrypto (a secure context: https or localhost)');
  }
  return crypto;
}

function randomString(byteCount = 32) {
  return base64url(webCrypto().getRandomValues(new Uint8Array(byteCount)));
}

/** The S256 code challenge of a PKCE verifier (RFC 7636 §4.2). */
export async function pkceChallenge(verifier) {
  const digest = await webCrypto().subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Compares two strings in time that depends on their length only. */
function sameString(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const length = Math.max(a.length, b.length);
  let difference = a.length ^ b.length;
  for (let i = 0; i < length; i += 1) {
    difference |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  }
  return difference === 0;
}

function webStorageAdapter(name) {
  const store = () => {
    const storage = globalThis[name];
    if (!storage) throw new TypeError(`${name} is not available here`);
    return storage;
  };
  return Object.freeze({
    get: (key) => store().getItem(key),
    set: (key, value) => store().setItem(key, value),
    remove: (key) => store().removeItem(key),
  });
}

function memoryStorage() {
  const values = new Map();
  return {
    get: (key) => (values.has(key) ? values.get(key) : null),
    set: (key, value) => { values.set(key, value); },
    remove: (key) => { values.delete(key); },
  };
}

/** The browser's sessionStorage when usable (not in Node, not in some sandboxes). */
function defaultTransactionStorage() {
  try {
    if (globalThis.sessionStorage) {
      const probe = '__bridgekeeper_probe__';
      globalThis.sessionStorage.setItem(probe, probe);
      globalThis.sessionStorage.removeItem(probe);
      return webStorageAdapter('sessionStorage');
    }
  } catch {
    // Storage disabled: fall through to memory (a redirect then cannot finish).
  }
  return memoryStorage();
}

function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function pathOf(url) {
  const parsed = new URL(url);
  return parsed.origin + parsed.pathname;
}

function withoutRedirectParams(href) {
  const url = new URL(href);
  for (const name of REDIRECT_PARAMS) url.searchParams.delete(name);
  return url.toString();
}

function validSession(value) {
  return value && typeof value === 'object'
    && typeof value.accessToken === 'string' && typeof value.refreshToken === 'string'
    && Number.isFinite(value.expiresAt) && Number.isFinite(value.issuedAt)
    && Number.isFinite(value.refreshExpiresAt)
    && value.user && typeof value.user.id === 'string'
    && typeof value.user.externalId === 'string';
}

function unref(timer) {
  // Node: a pending refresh never keeps a script alive.
  if (timer && typeof timer === 'object' && typeof timer.unref === 'function') timer.unref();
  return timer;
}

// ---------------------------------------------------------------------------

class BridgekeeperClient {
  #appId;
  #baseUrl;
  #redirectUri;
  #fetch;
  #storage;
  #transactions;
  #navigate;
  #timeoutMs;
  #autoRefresh;
  #session = null;
  #refreshing = null;
  #timer = null;
  #listeners = new Set();
  #popupName;

  constructor(options = {}) {
    const { appId, baseUrl, redirectUri, storage, fetch, navigate, transactionStorage,
      timeoutMs = DEFAULT_TIMEOUT_MS, autoRefresh = true } = options;
    if (typeof appId !== 'string' || !APP_ID.test(appId)) {
      throw new TypeError('Bridgekeeper: appId must be the app\'s 8-character id');
    }
    if (typeof baseUrl !== 'string' || !/^https?:\/\//.test(baseUrl)) {
      throw new TypeError('Bridgekeeper: baseUrl must be the service\'s http(s) URL');
    }
    if (redirectUri !== undefined) new URL(redirectUri); // throws on a malformed URI
    for (const [name, adapter] of [['storage', storage], ['transactionStorage', transactionStorage]]) {
      if (adapter !== undefined && !['get', 'set', 'remove'].every(
        (method) => typeof adapter?.[method] === 'function')) {
        throw new TypeError(`Bridgekeeper: ${name} needs get(key), set(key, value), remove(key)`);
      }
    }
    if (fetch !== undefined && typeof fetch !== 'function') {
      throw new TypeError('Bridgekeeper: fetch must be a function');
    }
    if (fetch === undefined && typeof globalThis.fetch !== 'function') {
      throw new TypeError('Bridgekeeper: no fetch available; pass {fetch}');
    }
    this.#appId = appId;
    this.#baseUrl = baseUrl.replace(/\/+$/, '');
    this.#redirectUri = redirectUri;
    // Called unbound, as window.fetch wants to be.
    this.#fetch = fetch ? (...args) => fetch(...args) : (...args) => globalThis.fetch(...args);
    this.#storage = storage ?? null;
    this.#transactions = transactionStorage ?? defaultTransactionStorage();
    this.#navigate = navigate ?? ((url) => globalThis.location.assign(url));
    this.#timeoutMs = timeoutMs;
    this.#autoRefresh = autoRefresh;
    this.#popupName = `bridgekeeper-login-${appId}`;
    /** Resolves once a session kept by the storage adapter has been restored. */
    this.ready = this.#restore();
  }

  get appId() { return this.#appId; }

  get baseUrl() { return this.#baseUrl; }

  get #sessionKey() { return `bridgekeeper:${this.#appId}:session`; }

  get #transactionKey() { return `bridgekeeper:${this.#appId}:login`; }

  #path(suffix) { return `/v1/apps/${this.#appId}${suffix}`; }

  // ----- the public API ------------------------------------------------------

  /**
   * Log the user in.
   * - `login()`: redirect to the sign-in page (PKCE + state); finish with handleRedirect().
   * - `login({popup: true})`: the same in a popup; resolves with the user.
   * - `login({hosted: true})`: Bridgekeeper's hosted sign-in form instead of your
   *   endpoint's page (the app's back-channel must be on); with `popup: true` too.
   * - `login({data})`: the in-app form, through the back-channel; resolves with the user.
   * The Ionic Cloud call `login('custom', loginData, loginOptions)` works too.
   */
  login(options = {}, ...ionic) {
    if (options === 'custom') {
      const [data, more] = ionic;
      const { popup, hosted, redirectUri } = more ?? {};
      return this.login(data && Object.keys(data).length ? { data }
        : { popup, hosted, redirectUri });
    }
    if (options.data !== undefined) return this.#loginInApp(options.data);
    if (options.popup) return this.#loginPopup(options);
    return this.#loginRedirect(options);
  }

  /** Exchange a custom token your server signed (docs/protocol.md §5.1). */
  async loginWithCustomToken(token) {
    if (typeof token !== 'string' || !token) throw new TypeError('loginWithCustomToken needs a token');
    await this.ready;
    const sentAt = Date.now();
    const payload = await this.#call('POST', this.#path('/login/custom-token'), { json: { token } });
    return this.#startSession(payload, sentAt);
  }

  /** Whether a URL (default: the current page) is the redirect back from a login. */
  isRedirectCallback(url = globalThis.location?.href) {
    if (!url || !this.#redirectUri) return false;
    // The popup page: the window that opened it finishes the login.
    if (globalThis.name === this.#popupName) return false;
    const parsed = new URL(url);
    return pathOf(url) === pathOf(this.#redirectUri) && parsed.searchParams.has('state')
      && (parsed.searchParams.has('code') || parsed.searchParams.has('error'));
  }

  /**
   * Finish a redirect login: check the state, surface an error return, exchange
   * the code (PKCE) for tokens, and remove the code from the address bar.
   */
  async handleRedirect(url) {
    const current = globalThis.location?.href;
    const href = url ?? current;
    if (!href) throw new TypeError('handleRedirect needs the URL the login returned to');
    await this.ready;
    const state = new URL(href).searchParams.get('state');
    const raw = await this.#transactions.get(this.#transactionKey);
    let transaction = null;
    try { transaction = raw ? JSON.parse(raw) : null; } catch { transaction = null; }
    if (!transaction || !sameString(state ?? '', transaction.state)) {
      // Not a login this page started (or already finished): never exchange.
      throw sdkError('invalid_request', 'state_mismatch',
        'the returned state does not belong to a login started here');
    }
    await this.#transactions.remove(this.#transactionKey);
    if (href === current) this.#cleanAddressBar(href);
    return this.#finishRedirect(href, transaction);
  }

  /** The logged-in user, `{id, externalId}`, or null. Synchronous. */
  user() {
    const user = this.#session?.user;
    return user ? { id: user.id, externalId: user.externalId } : null;
  }

  /** The user's record at Bridgekeeper: `/v1/apps/{appId}/me`. */
  async me() {
    const token = await this.accessToken();
    try {
      return await this.#call('GET', this.#path('/me'), { bearer: token });
    } catch (error) {
      if (error.status !== 401 || !this.#session) throw error;
      if (error.reason === 'session_revoked') {
        await this.#endSession(error, this.#session);
        throw error;
      }
      // Expired on the way (a slow clock): refresh once, ask once more.
      const fresh = await this.#refresh();
      return this.#call('GET', this.#path('/me'), { bearer: fresh.accessToken });
    }
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async accessToken() {
    await this.ready;
    if (this.#refreshing) return (await this.#refreshing).accessToken;
    const session = this.#session;
    if (!session) throw loginRequired();
    if (session.expiresAt - Date.now() > this.#lead(session)) return session.accessToken;
    return (await this.#refresh()).accessToken;
  }

  /** Rotate the tokens now (concurrent calls share one request). */
  async refresh() {
    await this.ready;
    const session = await this.#refresh();
    return { id: session.user.id, externalId: session.user.externalId };
  }

  /** End the session here and at Bridgekeeper. Local state is cleared whatever happens. */
  async logout() {
    await this.ready;
    if (this.#refreshing) await this.#refreshing.catch(() => {});
    const session = this.#session;
    if (!session) return;
    await this.#endSession(null, session);
    const bearer = session.expiresAt - Date.now() > BEARER_MIN_VALIDITY_MS
      ? session.accessToken : undefined;
    try {
      await this.#call('POST', this.#path('/logout'),
        { json: { refresh_token: session.refreshToken }, bearer });
    } catch (error) {
      // 401: the session had already ended at Bridgekeeper — logged out either way.
      if (error.status !== 401) throw error;
    }
  }

  /** Listen to logins and logouts: `listener(user | null, error?)`. Returns an unsubscribe. */
  onChange(listener) {
    if (typeof listener !== 'function') throw new TypeError('onChange needs a function');
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ----- logins ----------------------------------------------------------------

  // The hosted form takes the authorize parameters at its own path.
  async #authorizeUrl({ redirectUri, state, verifier }, hosted) {
    const params = new URLSearchParams({
      redirect_uri: redirectUri,
      code_challenge: await pkceChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    return `${this.#baseUrl}${this.#path(hosted ? '/login' : '/authorize')}?${params}`;
  }

  async #newTransaction(redirectUri, hosted) {
    if (!redirectUri) throw new TypeError('Bridgekeeper: a redirectUri is required to log in');
    const transaction = { state: randomString(), verifier: randomString(), redirectUri };
    const url = await this.#authorizeUrl(transaction, Boolean(hosted));
    return { transaction, url };
  }

  async #loginRedirect({ redirectUri = this.#redirectUri, hosted = false } = {}) {
    const { transaction, url } = await this.#newTransaction(redirectUri, hosted);
    await this.#transactions.set(this.#transactionKey, JSON.stringify(transaction));
    this.#navigate(url);
  }

  #loginPopup({ redirectUri = this.#redirectUri, hosted = false,
    popupFeatures = 'popup,width=480,height=680' }) {
    // Opened before anything is awaited, so the click that called login() allows it.
    const popup = typeof globalThis.open === 'function'
      ? globalThis.open('about:blank', this.#popupName, popupFeatures) : null;
    if (!popup) {
      return Promise.reject(sdkError('popup_blocked', 'popup_blocked',
        'the browser did not open the sign-in window'));
    }
    return (async () => {
      let transaction;
      try {
        await this.ready;
        const started = await this.#newTransaction(redirectUri, hosted);
        transaction = started.transaction;
        // Kept in this window's memory only: a copy of sessionStorage in the
        // popup holds nothing its page could exchange.
        popup.location.href = started.url;
      } catch (error) {
        popup.close();
        throw error;
      }
      const href = await this.#waitForPopup(popup, transaction.redirectUri);
      return this.#finishRedirect(href, transaction);
    })();
  }

  #waitForPopup(popup, redirectUri) {
    const target = pathOf(redirectUri);
    const deadline = Date.now() + POPUP_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const poll = () => {
        if (popup.closed) {
          reject(sdkError('popup_closed', 'popup_closed', 'the sign-in window was closed'));
          return;
        }
        let href = null;
        try {
          href = popup.location.href; // throws while the popup shows another origin
        } catch {
          href = null;
        }
        if (href && href !== 'about:blank' && pathOf(href) === target) {
          const params = new URL(href).searchParams;
          if (params.has('state') && (params.has('code') || params.has('error'))) {
            popup.close();
            resolve(href);
            return;
          }
        }
        if (Date.now() > deadline) {
          popup.close();
          reject(sdkError('popup_closed', 'timeout', 'the sign-in window was open too long'));
          return;
        }
        setTimeout(poll, POPUP_POLL_MS);
      };
      setTimeout(poll, POPUP_POLL_MS);
    });
  }

  async #finishRedirect(href, transaction) {
    const params = new URL(href).searchParams;
    if (!sameString(params.get('state') ?? '', transaction.state)) {
      throw sdkError('invalid_request', 'state_mismatch',
        'the returned state does not belong to this login');
    }
    if (params.has('error')) {
      throw new BridgekeeperError({
        error: params.get('error'),
        reason: params.get('reason'),
        description: params.get('error_description') ?? '',
      });
    }
    const code = params.get('code');
    if (!code) throw sdkError('invalid_request', 'code_invalid', 'the redirect carries no code');
    const sentAt = Date.now();
    const payload = await this.#call('POST', this.#path('/token'), {
      form: {
        grant_type: 'authorization_code',
        code,
        redirect_uri: transaction.redirectUri,
        code_verifier: transaction.verifier,
      },
    });
    return this.#startSession(payload, sentAt);
  }

  async #loginInApp(data) {
    if (!data || typeof data !== 'object' || Array.isArray(data)) {
      throw new TypeError('login({data}) needs an object, e.g. {id, passphrase}');
    }
    await this.ready;
    const sentAt = Date.now();
    const payload = await this.#call('POST', this.#path('/login/custom'), { json: { data } });
    return this.#startSession(payload, sentAt);
  }

  #cleanAddressBar(href) {
    const history = globalThis.history;
    if (typeof history?.replaceState !== 'function') return;
    history.replaceState(history.state, '', withoutRedirectParams(href));
  }

  // ----- sessions --------------------------------------------------------------

  #sessionFrom(payload, sentAt) {
    const { access_token: accessToken, expires_in: expiresIn, refresh_token: refreshToken,
      refresh_expires_in: refreshExpiresIn, user } = payload ?? {};
    if (typeof accessToken !== 'string' || typeof refreshToken !== 'string'
      || !Number.isFinite(expiresIn) || !Number.isFinite(refreshExpiresIn)
      || typeof user?.id !== 'string' || typeof user?.external_id !== 'string') {
      throw sdkError('server_error', 'unexpected_response', 'the token response is incomplete');
    }
    // Lifetimes count from when the request was sent: never later than the server's.
    return {
      accessToken,
      refreshToken,
      issuedAt: sentAt,
      expiresAt: sentAt + expiresIn * 1000,
      refreshExpiresAt: sentAt + refreshExpiresIn * 1000,
      user: { id: user.id, externalId: user.external_id },
    };
  }

  async #startSession(payload, sentAt) {
    const session = this.#sessionFrom(payload, sentAt);
    await this.#setSession(session, true);
    return this.user();
  }

  async #setSession(session, notify) {
    this.#session = session;
    this.#schedule();
    if (this.#storage) await this.#storage.set(this.#sessionKey, JSON.stringify(session));
    if (notify) this.#emit(this.user());
  }

  async #endSession(error, session) {
    if (session && this.#session !== session) return; // already replaced or ended
    const hadUser = this.#session !== null;
    this.#session = null;
    this.#clearTimer();
    if (this.#storage) {
      try {
        await this.#storage.remove(this.#sessionKey);
      } catch {
        // The session is over in memory; a storage failure must not hide that.
      }
    }
    if (hadUser) this.#emit(null, error ?? undefined);
  }

  #emit(user, error) {
    for (const listener of [...this.#listeners]) {
      try {
        if (error) listener(user, error); else listener(user);
      } catch (failure) {
        queueMicrotask(() => { throw failure; }); // reported, never breaking the SDK
      }
    }
  }

  async #readStored() {
    let raw = null;
    try {
      raw = await this.#storage.get(this.#sessionKey);
    } catch {
      return null;
    }
    try {
      const value = raw ? JSON.parse(raw) : null;
      return validSession(value) ? value : null;
    } catch {
      return null;
    }
  }

  async #restore() {
    if (!this.#storage) return;
    const stored = await this.#readStored();
    if (!stored) return;
    if (stored.refreshExpiresAt <= Date.now()) {
      try { await this.#storage.remove(this.#sessionKey); } catch { /* nothing to keep */ }
      return;
    }
    this.#session = stored;
    this.#schedule();
    this.#emit(this.user());
  }

  #lead(session) {
    return Math.min(REFRESH_LEAD_MS, (session.expiresAt - session.issuedAt) * REFRESH_LEAD_SHARE);
  }

  #refresh() {
    if (this.#refreshing) return this.#refreshing;
    const refreshing = this.#rotate().finally(() => {
      if (this.#refreshing === refreshing) this.#refreshing = null;
    });
    this.#refreshing = refreshing;
    return refreshing;
  }

  async #rotate() {
    let session = this.#session;
    if (!session) throw loginRequired();
    if (this.#storage) {
      // Another tab sharing the storage may have rotated already (every
      // rotation is written through, so a different token there is newer): use
      // its tokens rather than present a refresh token that is no longer current.
      const stored = await this.#readStored();
      if (stored && stored.refreshToken !== session.refreshToken
        && stored.user.id === session.user.id) {
        this.#session = stored;
        this.#schedule();
        if (stored.expiresAt - Date.now() > this.#lead(stored)) return stored;
        session = stored;
      }
    }
    if (session.refreshExpiresAt <= Date.now()) {
      const expired = sdkError('invalid_grant', 'refresh_invalid', 'the session has expired');
      await this.#endSession(expired, session);
      throw expired;
    }
    const sentAt = Date.now();
    let payload;
    try {
      payload = await this.#call('POST', this.#path('/token'), {
        form: { grant_type: 'refresh_token', refresh_token: session.refreshToken },
      });
    } catch (error) {
      if (error.error === 'invalid_grant' || SESSION_ENDING.has(error.reason)) {
        await this.#endSession(error, session);
      }
      throw error;
    }
    const next = this.#sessionFrom(payload, sentAt);
    if (this.#session !== session) {
      // Ended or replaced (a new login) while the request was out.
      if (!this.#session) throw loginRequired();
      return this.#session;
    }
    await this.#setSession(next, next.user.id !== session.user.id);
    return next;
  }

  #clearTimer() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(delay) {
    this.#clearTimer();
    const session = this.#session;
    if (!this.#autoRefresh || !session) return;
    const wait = delay ?? Math.max(0, session.expiresAt - this.#lead(session) - Date.now());
    this.#timer = unref(setTimeout(() => this.#refreshInBackground(delay), wait));
  }

  async #refreshInBackground(previousDelay) {
    this.#timer = null;
    try {
      await this.#refresh(); // schedules the next one
    } catch (error) {
      if (!this.#session || error.reason === 'login_required') return; // the session ended
      // A network failure, a 429 or a 503: try again soon (1, 2, 4… 30 s). The
      // first retries fall within the 10 s in which Bridgekeeper answers a
      // repeated refresh token with the same successor.
      let delay = Math.min(RETRY_MAX_MS, previousDelay ? previousDelay * 2 : 1000);
      if (error.retryAfter) delay = Math.max(delay, error.retryAfter * 1000);
      this.#schedule(delay);
    }
  }

  // ----- HTTP ------------------------------------------------------------------

  async #call(method, path, { json, form, bearer } = {}) {
    const headers = { Accept: 'application/json' };
    let body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    const controller = new AbortController();
    const timer = unref(setTimeout(() => controller.abort(), this.#timeoutMs));
    let response;
    let text;
    try {
      response = await this.#fetch(this.#baseUrl + path, {
        method, headers, body, credentials: 'omit', signal: controller.signal,
      });
      text = await response.text();
    } catch (cause) {
      const timedOut = controller.signal.aborted;
      throw sdkError('network_error', timedOut ? 'timeout' : 'network_error',
        timedOut ? `no answer from Bridgekeeper within ${this.#timeoutMs} ms`
          : 'Bridgekeeper could not be reached', { cause });
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 204) return null;
    let payload = null;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
    }
    const requestId = response.headers?.get?.('X-Request-ID') ?? null;
    if (response.ok && payload && typeof payload === 'object') return payload;
    const known = payload && typeof payload === 'object' && typeof payload.error === 'string';
    throw new BridgekeeperError({
      error: known ? payload.error : 'server_error',
      reason: known ? (payload.reason ?? null) : 'unexpected_response',
      description: known ? (payload.error_description ?? '')
        : `unexpected answer from Bridgekeeper (HTTP ${response.status})`,
      status: response.status,
      requestId: (known && payload.request_id) || requestId,
      retryAfter: parseRetryAfter(response.headers?.get?.('Retry-After')),
    });
  }
}

/**
 * Create a client: `const bk = Bridgekeeper({appId, baseUrl, redirectUri})`.
 * Tokens stay in memory unless a `storage` adapter is given.
 */
export function Bridgekeeper(options) {
  return new BridgekeeperClient(options);
}

/** Opt-in adapters for `storage`. Anything in web storage is readable by any script on the page. */
export const sessionStorageAdapter = webStorageAdapter('sessionStorage');
export const localStorageAdapter = webStorageAdapter('localStorage');

Bridgekeeper.sessionStorageAdapter = sessionStorageAdapter;
Bridgekeeper.localStorageAdapter = localStorageAdapter;
Bridgekeeper.BridgekeeperError = BridgekeeperError;
Bridgekeeper.VERSION = VERSION;

export { BridgekeeperClient };
export default Bridgekeeper;
