// The sign-in proof of work (saas/proof_of_work.py): find a nonce such that
// SHA-256("<challenge>:<nonce>") starts with data-bits zero bits, put it in
// the form, then let the member submit. A file, not inline script (CSP).
// WebCrypto needs a secure context: https, or http on localhost.
"use strict";

(() => {
  const challenge = document.querySelector("input[name=pow_challenge]");
  if (!challenge) return;
  const form = challenge.form;
  const nonce = form.querySelector("input[name=pow_nonce]");
  const status = document.getElementById("pow-status");
  const button = form.querySelector("button[type=submit]");
  const bits = Number(challenge.dataset.bits);
  const encoder = new TextEncoder();

  function zeroBits(bytes) {
    let count = 0;
    for (const byte of bytes) {
      if (byte === 0) { count += 8; continue; }
      return count + Math.clz32(byte) - 24;
    }
    return count;
  }

  async function solve() {
    if (!window.crypto || !crypto.subtle) {
      status.textContent = "This browser cannot solve the puzzle here (it needs https).";
      return;
    }
    button.disabled = true;
    for (let counter = 0; ; counter++) {
      const data = encoder.encode(`${challenge.value}:${counter}`);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
      if (zeroBits(digest) >= bits) {
        nonce.value = String(counter);
        break;
      }
    }
    button.disabled = false;
    status.textContent = "Puzzle solved: enter your password and sign in.";
  }

  solve();
})();
