// Make a Bridgekeeper custom token, in Node (jsonwebtoken).
//
// Your server runs this (or the same few lines) for a user it has already
// authenticated, and hands the token to your app, which posts it to
// `POST /v1/apps/{app_id}/login/custom-token` as `{"token": "..."}`.
// The claims are Skygear's, byte for byte: `sub`, `iat`, `exp` (at most one
// hour after `iat`) and `skyprofile`, signed HS256 with the app's custom-token
// secret. See docs/custom-tokens.md.
//
// Run:  npm ci
//       BRIDGEKEEPER_CUSTOM_TOKEN_SECRET=... node make-token.js USER_ID [EMAIL [USERNAME]]
// (or give the user in BRIDGEKEEPER_USER_ID, BRIDGEKEEPER_USER_EMAIL,
// BRIDGEKEEPER_USER_USERNAME). Prints the token on stdout.
'use strict';

var crypto = require('crypto');
var jwt = require('jsonwebtoken');

function arg(index, env, fallback) {
  var value = process.argv[2 + index];
  if (value === undefined) value = process.env[env];
  return value === undefined ? fallback : value;
}

var userID = arg(0, 'BRIDGEKEEPER_USER_ID'); // User id of your server, 1-36 characters
var customTokenSecret = process.env.BRIDGEKEEPER_CUSTOM_TOKEN_SECRET;
if (!userID || !customTokenSecret) {
  console.error('usage: BRIDGEKEEPER_CUSTOM_TOKEN_SECRET=... node make-token.js USER_ID [EMAIL [USERNAME]]');
  process.exit(2);
}
var nowSeconds = Math.floor(Date.now() / 1000); // an integer: Bridgekeeper refuses float times

var token = jwt.sign({
  sub: userID,
  iat: nowSeconds,
  exp: nowSeconds + (60 * 60), // expire within 1 hour
  // Not in Skygear's example; we recommend it. A token is accepted once, and two
  // tokens made for one user in the same second are otherwise identical, so the
  // second would be refused as token_replayed. A unique jti tells them apart.
  jti: crypto.randomUUID(),
  skyprofile: {
    email: arg(1, 'BRIDGEKEEPER_USER_EMAIL', ''),
    username: arg(2, 'BRIDGEKEEPER_USER_USERNAME', 'user')
  }
}, customTokenSecret, { algorithm: 'HS256' });

console.log(token);
