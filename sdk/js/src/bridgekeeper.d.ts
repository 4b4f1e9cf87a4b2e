// Types of the Bridgekeeper JavaScript SDK (hand-written; the SDK is plain JavaScript).

export declare const VERSION: string;

/** Where a session is kept when it should outlive the page. Sync or async. */
export interface StorageAdapter {
  get(key: string): string | null | undefined | Promise<string | null | undefined>;
  set(key: string, value: string): void | Promise<void>;
  remove(key: string): void | Promise<void>;
}

export interface BridgekeeperOptions {
  /** The app's id: 8 characters `[a-z0-9]`. */
  appId: string;
  /** Bridgekeeper's URL, e.g. `https://auth.example.com`. */
  baseUrl: string;
  /** Where the sign-in page sends the user back; must be on the app's allow-list. */
  redirectUri?: string;
  /** Keep the session beyond memory. Default: memory only. */
  storage?: StorageAdapter;
  /** A fetch to use instead of `globalThis.fetch` (tests, custom agents). */
  fetch?: typeof globalThis.fetch;
  /** How `login()` leaves the page. Default: `location.assign(url)`. */
  navigate?: (url: string) => void;
  /** Where a redirect login's PKCE verifier and state wait. Default: `sessionStorage`. */
  transactionStorage?: StorageAdapter;
  /** Abort a request after this many milliseconds. Default 30 000. */
  timeoutMs?: number;
  /** Refresh the tokens shortly before they expire. Default true. */
  autoRefresh?: boolean;
}

export interface BridgekeeperUser {
  /** Bridgekeeper's id of the user (a UUID). */
  id: string;
  /** Your id of the user (the tenant's `user_id` or the custom token's `sub`). */
  externalId: string;
}

/** `GET /v1/apps/{appId}/me`. */
export interface BridgekeeperProfile {
  id: string;
  app_id: string;
  external_id: string;
  custom: Record<string, unknown>;
  profile: Record<string, unknown>;
  created_at: string | null;
  last_login_at: string | null;
}

export interface LoginOptions {
  /** In-app form: the fields your login endpoint expects, e.g. `{id, passphrase}`. */
  data?: Record<string, unknown>;
  /** Sign in in a popup instead of leaving the page. */
  popup?: boolean;
  /**
   * Sign in on Bridgekeeper's hosted form (`/v1/apps/{appId}/login`) instead of
   * your endpoint's own page; needs the app's back-channel. Redirect or popup.
   */
  hosted?: boolean;
  /** `window.open` features of the popup. */
  popupFeatures?: string;
  /** Overrides the client's `redirectUri` for this login. */
  redirectUri?: string;
}

export type ErrorCode =
  | 'invalid_request' | 'invalid_grant' | 'invalid_token' | 'unauthorized_client'
  | 'unsupported_grant_type' | 'access_denied' | 'server_error' | 'temporarily_unavailable'
  | 'network_error' | 'login_required' | 'popup_blocked' | 'popup_closed'
  | (string & {});

export type ReasonCode =
  | 'state_missing' | 'state_unknown' | 'state_replayed' | 'state_app_mismatch'
  | 'state_not_bound' | 'host_mismatch' | 'token_missing' | 'token_malformed'
  | 'token_alg_not_allowed'
  | 'token_bad_signature' | 'token_expired' | 'token_not_yet_valid' | 'token_too_old'
  | 'token_lifetime_too_long' | 'token_replayed' | 'user_id_missing' | 'user_id_invalid'
  | 'claims_invalid' | 'payload_too_large' | 'tenant_denied' | 'tenant_error'
  | 'tenant_unreachable' | 'user_disabled' | 'redirect_uri_not_allowed' | 'pkce_invalid'
  | 'code_invalid' | 'refresh_invalid' | 'refresh_reused' | 'session_revoked'
  | 'rate_limited' | 'app_not_found' | 'feature_disabled' | 'store_unavailable'
  // OpenID Connect endpoints (docs/oidc.md):
  | 'client_id_mismatch' | 'invalid_client' | 'login_required' | 'unsupported_response_type'
  | 'insufficient_scope'
  // Raised by the SDK itself:
  | 'network_error' | 'timeout' | 'state_mismatch' | 'login_required' | 'popup_blocked'
  | 'popup_closed' | 'unexpected_response'
  | (string & {});

export declare class BridgekeeperError extends Error {
  constructor(fields?: {
    error?: string; reason?: string | null; description?: string; status?: number | null;
    requestId?: string | null; retryAfter?: number | null; cause?: unknown;
  });
  readonly name: 'BridgekeeperError';
  /** RFC 6749 code, e.g. `access_denied`, or the SDK's own (`network_error`…). */
  error: ErrorCode;
  /** Bridgekeeper's reason code (docs/protocol.md §7), e.g. `tenant_denied`. */
  reason: ReasonCode | null;
  description: string;
  /** HTTP status, or null when no answer was involved. */
  status: number | null;
  requestId: string | null;
  /** Seconds to wait before trying again (429, 503). */
  retryAfter: number | null;
}

export declare class BridgekeeperClient {
  constructor(options: BridgekeeperOptions);
  readonly appId: string;
  readonly baseUrl: string;
  /** Resolves once a session kept by the storage adapter has been restored. */
  readonly ready: Promise<void>;
  /** Redirect login: leaves the page (finish with `handleRedirect()`). */
  login(options?: { redirectUri?: string; hosted?: boolean }): Promise<void>;
  /** Popup login or in-app form: resolves with the user. */
  login(options: LoginOptions & ({ popup: true } | { data: Record<string, unknown> }))
    : Promise<BridgekeeperUser>;
  login(options?: LoginOptions): Promise<BridgekeeperUser | void>;
  /** The Ionic Cloud call: in-app form when `loginData` has fields, else a redirect. */
  login(provider: 'custom', loginData?: Record<string, unknown>,
    loginOptions?: { popup?: boolean; hosted?: boolean; redirectUri?: string;
      [option: string]: unknown })
    : Promise<BridgekeeperUser | void>;
  loginWithCustomToken(token: string): Promise<BridgekeeperUser>;
  isRedirectCallback(url?: string): boolean;
  handleRedirect(url?: string): Promise<BridgekeeperUser>;
  user(): BridgekeeperUser | null;
  me(): Promise<BridgekeeperProfile>;
  accessToken(): Promise<string>;
  refresh(): Promise<BridgekeeperUser>;
  logout(): Promise<void>;
  onChange(listener: (user: BridgekeeperUser | null, error?: BridgekeeperError) => void)
    : () => void;
}

export declare const sessionStorageAdapter: StorageAdapter;
export declare const localStorageAdapter: StorageAdapter;

/** The S256 PKCE challenge of a verifier. */
export declare function pkceChallenge(verifier: string): Promise<string>;

export interface BridgekeeperFactory {
  (options: BridgekeeperOptions): BridgekeeperClient;
  new (options: BridgekeeperOptions): BridgekeeperClient;
  sessionStorageAdapter: StorageAdapter;
  localStorageAdapter: StorageAdapter;
  BridgekeeperError: typeof BridgekeeperError;
  VERSION: string;
}

export declare const Bridgekeeper: BridgekeeperFactory;
export default Bridgekeeper;
