// Passkeys (WebAuthn). The page holds the server's options in
// <script type="application/json" id="passkey-options"> (data, never run:
// the dashboard's CSP allows only script files of the service); a button
// with data-passkey="create" or "get" runs the ceremony and submits its form
// with the credential, as JSON, in the form's "credential" field. Without
// JavaScript or WebAuthn the buttons stay hidden.
"use strict";

(() => {
  const source = document.getElementById("passkey-options");
  if (!source || !window.PublicKeyCredential) return;

  const bytes = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64.padEnd(Math.ceil(b64.length / 4) * 4, "=");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };
  const text = (buffer) => {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  function creationOptions(options) {
    options.challenge = bytes(options.challenge);
    options.user.id = bytes(options.user.id);
    for (const credential of options.excludeCredentials || []) credential.id = bytes(credential.id);
    return options;
  }

  function requestOptions(options) {
    options.challenge = bytes(options.challenge);
    for (const credential of options.allowCredentials || []) credential.id = bytes(credential.id);
    return options;
  }

  function serialise(credential) {
    const answer = credential.response;
    const out = {
      id: credential.id, rawId: text(credential.rawId), type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: text(answer.clientDataJSON) },
    };
    if (credential.authenticatorAttachment) {
      out.authenticatorAttachment = credential.authenticatorAttachment;
    }
    if (answer.attestationObject) {
      out.response.attestationObject = text(answer.attestationObject);
      if (answer.getTransports) out.response.transports = answer.getTransports();
    } else {
      out.response.authenticatorData = text(answer.authenticatorData);
      out.response.signature = text(answer.signature);
      if (answer.userHandle) out.response.userHandle = text(answer.userHandle);
    }
    return out;
  }

  for (const button of document.querySelectorAll("button[data-passkey]")) {
    const form = button.form;
    const status = form.querySelector("[data-passkey-status]");
    button.hidden = false;
    button.addEventListener("click", async () => {
      if (!form.reportValidity()) return;
      const options = JSON.parse(source.textContent);
      try {
        const credential = button.dataset.passkey === "create"
          ? await navigator.credentials.create({ publicKey: creationOptions(options) })
          : await navigator.credentials.get({ publicKey: requestOptions(options) });
        form.elements.credential.value = JSON.stringify(serialise(credential));
        form.submit();
      } catch (error) {
        if (status) status.textContent = `The passkey was not used (${error.name}). Try again.`;
      }
    });
  }
})();
