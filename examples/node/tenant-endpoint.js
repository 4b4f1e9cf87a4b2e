'use strict';
/*
 * A tenant's custom-auth endpoint for Bridgekeeper, in Node (express + jsonwebtoken).
 *
 * It follows the three steps of the protocol:
 *
 * 1. verify the incoming request token (HS256, your custom-auth secret);
 * 2. authenticate the user — here with a sign-in form and a demo user table;
 * 3. redirect back to `redirect_uri` with `&token=…&state=…`, where the token
 *    is signed with the same secret and carries `user_id`, `custom` data and
 *    the `state` claim (which binds the token to this one login).
 *
 * A refused user is sent back with `&error=access_denied` rather than a 401,
 * so the app learns of the refusal.
 *
 * Run:  BRIDGEKEEPER_SECRET=... node tenant-endpoint.js --port 8765
 */

const crypto = require('node:crypto');
const { parseArgs } = require('node:util');
const express = require('express');
const jwt = require('jsonwebtoken');

// Your own user system. Never keep plain passwords in real code.
const USERS = new Map([
  ['alice', { passphrase: 'wonderland', id: 1001, custom: { plan: 'pro', lang: 'en' } }],
  ['bob', { passphrase: 'builder', id: 'bob-42', custom: { plan: 'free' } }],
]);

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (ch) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;',
}[ch]));

const form = ({ redirectUri, state, token }) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in</title></head>
<body><h1>Sign in to Example Co.</h1>
<form method="post">
<input type="hidden" name="redirect_uri" value="${escapeHtml(redirectUri)}">
<input type="hidden" name="state" value="${escapeHtml(state)}">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<label for="id">User</label> <input id="id" name="id" autocomplete="username">
<label for="passphrase">Passphrase</label>
<input id="passphrase" name="passphrase" type="password" autocomplete="current-password">
<button type="submit">Sign in</button>
</form></body></html>`;

// A repeated query parameter arrives as an array: use its first value.
const first = (value) => (Array.isArray(value) ? first(value[0]) : typeof value === 'string' ? value : '');

// `redirect_uri` already holds `?flow=custom`: append with `&`, never `?`.
const redirectBack = (res, redirectUri, params) => res
  .status(302)
  .set('Location', `${redirectUri}&${new URLSearchParams(params)}`)
  .type('html')
  .end();

function makeApp(secret) {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '64kb' }));

  // Serves every path: point your dashboard's endpoint URL at any of them.
  app.use((req, res) => {
    const isPost = req.method === 'POST';
    const field = (isPost ? req.body : req.query) || {};
    const redirectUri = first(field.redirect_uri);
    const state = first(field.state);
    const token = first(field.token);

    // Step 1: verify the incoming request token.
    let incoming;
    try {
      incoming = jwt.verify(token, secret, { algorithms: ['HS256'] });
    } catch {
      return res.status(401).type('html').send('invalid request token');
    }
    const data = incoming.data && typeof incoming.data === 'object' ? incoming.data : {};

    if (!isPost && !data.id) {
      return res.status(200).type('html').send(form({ redirectUri, state, token }));
    }

    // Step 2: authenticate the user with your own system. Credentials come
    // from the form (or from `data` when Bridgekeeper calls server-to-server).
    const userName = first(field.id) || String(data.id ?? '');
    const passphrase = first(field.passphrase) || String(data.passphrase ?? '');
    const user = USERS.get(userName);
    if (!user || user.passphrase !== passphrase) {
      // Tell the app: redirect back with an error instead of a 401.
      return redirectBack(res, redirectUri, {
        error: 'access_denied',
        error_description: 'Unknown user or wrong passphrase',
        state,
      });
    }

    // Step 3: sign the outgoing token and redirect back.
    const now = Math.floor(Date.now() / 1000);
    const outgoing = jwt.sign(
      {
        user_id: user.id,
        custom: user.custom,
        state,
        iat: now,
        exp: now + 60,
        jti: crypto.randomUUID().replaceAll('-', ''),
      },
      secret,
      { algorithm: 'HS256' },
    );
    return redirectBack(res, redirectUri, { token: outgoing, state });
  });

  return app;
}

function main() {
  const { values } = parseArgs({ options: { port: { type: 'string' } } });
  const port = Number(values.port ?? process.env.PORT ?? 8765);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid port: ${values.port ?? process.env.PORT}`);
    process.exit(2);
  }
  const secret = process.env.BRIDGEKEEPER_SECRET;
  if (!secret) {
    console.error("set BRIDGEKEEPER_SECRET to your app's custom-auth secret");
    process.exit(1);
  }
  const host = '127.0.0.1';
  const server = makeApp(secret).listen(port, host, (error) => {
    if (error) throw error;
    console.log(`listening on http://${host}:${server.address().port}`);
  });
}

if (require.main === module) {
  main();
}

module.exports = { makeApp };
