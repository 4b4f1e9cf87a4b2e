// The benchmark's peer: node oidc-provider 9.x on Redis, two cluster
// processes (as gunicorn runs our two workers), started by bench/peer.py.
//
//   PORT=8000 REDIS_URL=redis://127.0.0.1:6379/0 node bench/peer/server.js
//
// One public client (`bench`, PKCE S256 required, refresh tokens rotated on
// every use), ES256 signing, one fixed account. `/interaction/:uid`
// completes login and consent at once and answers with the redirect back to
// the authorization endpoint (no HTML), so a full login is GET /auth →
// /interaction/:uid → /auth/:uid → redirect with the code → POST /token.
// Userinfo is `/me` (oidc-provider's default route).
//
// Environment: PORT, REDIS_URL, PEER_WORKERS (2), PEER_READY_FILE (written
// by the primary once every worker listens).

import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

import RedisAdapter, { GRANT_TTL } from './redis_adapter.js';

const PORT = Number(process.env.PORT);
const WORKERS = Number(process.env.PEER_WORKERS || 2);
const CLIENT_REDIRECT = 'https://app.example.com/callback';
const ACCOUNT_ID = 'alice';
const ACCOUNT_CLAIMS = {
  sub: ACCOUNT_ID,
  name: 'Alice Liddell',
  email: 'alice@example.com',
  email_verified: true,
};

function primary() {
  // Both workers sign with one key and one cookie secret, made here.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'peer-es256', alg: 'ES256', use: 'sig' };
  const env = {
    PEER_JWK: JSON.stringify(jwk),
    PEER_COOKIE_KEY: randomBytes(32).toString('base64url'),
  };
  let listening = 0;
  for (let i = 0; i < WORKERS; i += 1) cluster.fork(env);
  cluster.on('listening', () => {
    listening += 1;
    if (listening === WORKERS && process.env.PEER_READY_FILE) {
      writeFileSync(process.env.PEER_READY_FILE, `${process.pid}\n`);
    }
  });
  // A worker that dies mid-run would skew the figures: stop the whole peer.
  cluster.on('exit', (worker, code, signal) => {
    console.error(`worker ${worker.process.pid} exited (${signal || code})`);
    process.exit(1);
  });
}

function configuration() {
  return {
    adapter: RedisAdapter,
    clients: [{
      client_id: 'bench',
      application_type: 'web',
      token_endpoint_auth_method: 'none', // public: PKCE is required for it
      redirect_uris: [CLIENT_REDIRECT],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [JSON.parse(process.env.PEER_JWK)] },
    cookies: { keys: [process.env.PEER_COOKIE_KEY] },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    findAccount: async (ctx, sub) => (sub === ACCOUNT_ID
      ? { accountId: sub, claims: async () => ACCOUNT_CLAIMS }
      : undefined),
    // PKCE for every client, and only S256 (the only method 9.x supports).
    pkce: { required: () => true },
    // The documented rule: a refresh token for a client allowed the grant
    // that was granted offline_access (which OIDC asks with prompt=consent).
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && code.scopes.has('offline_access'),
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
    },
    ttl: {
      AccessToken: 3600,
      // Codes minted in one phase of the exchange scenario are spent in the next.
      AuthorizationCode: 600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: GRANT_TTL,
      RefreshToken: 14 * 24 * 60 * 60,
    },
  };
}

async function interaction(provider, req, res) {
  // One read of the interaction: the fixed account logs in and consents to
  // whatever the client asked; the provider resumes at `returnTo`.
  const details = await provider.interactionDetails(req, res);
  const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  details.result = {
    login: { accountId: ACCOUNT_ID },
    consent: { grantId: await grant.save() },
  };
  await details.save(details.exp - Math.floor(Date.now() / 1000));
  res.writeHead(303, { Location: details.returnTo, 'Content-Length': '0' });
  res.end();
}

function worker() {
  const provider = new Provider(`http://127.0.0.1:${PORT}`, configuration());
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(provider, req, res).catch((error) => {
        console.error('interaction', error);
        res.writeHead(500, { 'Content-Length': '0' });
        res.end();
      });
    } else {
      callback(req, res);
    }
  });
  server.listen(PORT, '127.0.0.1');
}

if (cluster.isPrimary) {
  primary();
} else {
  worker();
}
