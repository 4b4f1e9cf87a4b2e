// A relying party built on openid-client (v6), the way its documentation
// shows, as a tiny web app on a loopback port: the test suite plays the
// user's browser against it (tests/integration/test_oidc_relying_parties.py).
//
//   BK_ISSUER=http://127.0.0.1:PORT/v1/apps/APP_ID BK_CLIENT_ID=APP_ID [BK_RP_PORT=N] \
//     node openid_client_rp.mjs
//
// It prints "listening on http://127.0.0.1:N" once it has discovered the
// issuer (N = BK_RP_PORT, else a free port). Routes (one signed-in user at a time, kept in memory):
//   GET  /login?scope=…            → 302 to the authorization endpoint (PKCE, state, nonce)
//   GET  /callback                 → code exchange + ID-token checks; JSON of the result
//   POST /refresh                  → refresh grant; JSON of the new ID token's claims
//   POST /userinfo                 → UserInfo with the current access token; JSON
//   POST /revoke                   → revokes the refresh token (RFC 7009)
//   GET  /logout?post_logout_redirect_uri=… → 302 to the end-session URL
//   GET  /signed-out               → where the end-session endpoint sends the user back
// A library error answers 502 with {"error": {name, code, message, error, status, …}}.

import http from "node:http";
import * as client from "openid-client";

const issuer = process.env.BK_ISSUER;
const clientId = process.env.BK_CLIENT_ID;
if (!issuer || !clientId) {
  console.error("set BK_ISSUER and BK_CLIENT_ID");
  process.exit(2);
}

// A public client (token_endpoint_auth_method "none"); plain http on loopback
// needs the library's documented opt-in for non-TLS development servers.
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});

const pending = new Map(); // state → {verifier, nonce}
let session = null; // the signed-in user's tokens
let logoutState = null;

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function describe(error) {
  // What the library said, with the OAuth error fields it parsed when it has them.
  return {
    name: error.name, code: error.code, message: error.message, error: error.error,
    error_description: error.error_description, status: error.status,
    // A WWWAuthenticateChallengeError's cause: the parsed challenges.
    challenges: Array.isArray(error.cause) ? error.cause : undefined,
    cause: error.cause instanceof Error ? error.cause.message : undefined,
  };
}

function summary(tokens) {
  return {
    claims: tokens.claims(), scope: tokens.scope, token_type: tokens.token_type,
    expires_in: tokens.expires_in, has_refresh_token: Boolean(tokens.refresh_token),
  };
}

const routes = {
  "GET /login": async (url, res, base) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    pending.set(state, { verifier, nonce });
    const target = client.buildAuthorizationUrl(config, {
      redirect_uri: `${base}/callback`,
      scope: url.searchParams.get("scope") ?? "openid profile email offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    res.writeHead(302, { Location: target.href });
    res.end();
  },
  "GET /callback": async (url, res) => {
    const checks = pending.get(url.searchParams.get("state"));
    if (!checks) return send(res, 400, { error: { message: "unknown state" } });
    pending.delete(url.searchParams.get("state"));
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: checks.verifier,
      expectedState: url.searchParams.get("state"),
      expectedNonce: checks.nonce,
      idTokenExpected: true,
    });
    session = tokens;
    send(res, 200, { ...summary(tokens), nonce: checks.nonce });
  },
  "POST /refresh": async (_url, res) => {
    const tokens = await client.refreshTokenGrant(config, session.refresh_token);
    const previous = session;
    session = tokens;
    send(res, 200, { ...summary(tokens), rotated: tokens.refresh_token !== previous.refresh_token });
  },
  "POST /userinfo": async (_url, res) => {
    const claims = await client.fetchUserInfo(config, session.access_token, session.claims().sub);
    send(res, 200, claims);
  },
  "POST /revoke": async (_url, res) => {
    await client.tokenRevocation(config, session.refresh_token, {
      token_type_hint: "refresh_token",
    });
    send(res, 200, { revoked: true });
  },
  "GET /logout": async (url, res) => {
    logoutState = client.randomState();
    const target = client.buildEndSessionUrl(config, {
      id_token_hint: session.id_token,
      post_logout_redirect_uri: url.searchParams.get("post_logout_redirect_uri"),
      state: logoutState,
    });
    res.writeHead(302, { Location: target.href });
    res.end();
  },
  "GET /signed-out": async (url, res) => {
    send(res, 200, { state_matches: url.searchParams.get("state") === logoutState });
  },
};

const server = http.createServer(async (req, res) => {
  const base = `http://${req.headers.host}`;
  const url = new URL(req.url, base);
  const route = routes[`${req.method} ${url.pathname}`];
  if (!route) return send(res, 404, { error: { message: "no such route" } });
  if (!session && !["/login", "/callback", "/signed-out"].includes(url.pathname)) {
    return send(res, 409, { error: { message: "nobody is signed in" } });
  }
  try {
    await route(url, res, base);
  } catch (error) {
    send(res, 502, { error: describe(error) });
  }
});

server.listen(Number(process.env.BK_RP_PORT || 0), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
