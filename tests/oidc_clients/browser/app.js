// A single-page app using oidc-client-ts as its documentation shows: the
// redirect sign-in (authorization code + PKCE), its callback on /callback,
// the user's profile (ID token claims merged with UserInfo), and the
// RP-initiated sign-out that comes back to /signed-out.
/* global oidc */
"use strict";

const config = JSON.parse(document.getElementById("rp-config").textContent);
const origin = window.location.origin;
const manager = new oidc.UserManager({
  authority: config.issuer,
  client_id: config.clientId,
  redirect_uri: `${origin}/callback`,
  post_logout_redirect_uri: `${origin}/signed-out`,
  response_type: "code",
  scope: "openid profile email",
  loadUserInfo: true,
});

const status = document.getElementById("status");
const profile = document.getElementById("profile");
const signIn = document.getElementById("sign-in");
const signOut = document.getElementById("sign-out");
const alertBox = document.getElementById("error");

function show(user) {
  const signedIn = Boolean(user && !user.expired);
  status.textContent = signedIn ? `Signed in as ${user.profile.sub}` : "Signed out";
  profile.textContent = signedIn ? JSON.stringify(user.profile, null, 2) : "(nobody)";
  signIn.hidden = signedIn;
  signOut.hidden = !signedIn;
}

function fail(error) {
  alertBox.hidden = false;
  alertBox.textContent = `${error.name}: ${error.message}`;
}

signIn.addEventListener("click", () => manager.signinRedirect().catch(fail));
signOut.addEventListener("click", () => manager.signoutRedirect().catch(fail));

async function start() {
  const path = window.location.pathname;
  if (path === "/callback") {
    const user = await manager.signinRedirectCallback();
    window.history.replaceState(null, "", "/");
    return user;
  }
  if (path === "/signed-out") {
    await manager.signoutRedirectCallback();
    window.history.replaceState(null, "", "/");
    return null;
  }
  return manager.getUser();
}

start().then(show, (error) => { show(null); fail(error); })
  .finally(() => { document.body.dataset.state = "ready"; });
