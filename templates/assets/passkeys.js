// Passkeys on latchkey's pages: sign-in from the username field's autofill (conditional UI)
// and from a button, and adding a passkey on the account page. The pages work without this
// script for passwords; it only adds passkeys where the browser has WebAuthn.
"use strict";
(() => {
  const toBytes = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };
  const toText = (buffer) => {
    let binary = "";
    new Uint8Array(buffer).forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const csrf = () => {
    const field = document.querySelector('input[name="csrf"]');
    return field ? field.value : "";
  };

  const post = async (url, body) => {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || "That did not work. Try again.");
    return data;
  };

  const showError = (box, error) => {
    if (!box || (error && error.name === "AbortError")) return;
    box.textContent = error && error.name === "NotAllowedError"
      ? "The passkey request was cancelled or timed out."
      : (error && error.message) || "That did not work. Try again.";
    box.hidden = false;
  };

  const requestOptions = (publicKey) => {
    publicKey.challenge = toBytes(publicKey.challenge);
    (publicKey.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    return publicKey;
  };

  const creationOptions = (publicKey) => {
    publicKey.challenge = toBytes(publicKey.challenge);
    publicKey.user.id = toBytes(publicKey.user.id);
    (publicKey.excludeCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    return publicKey;
  };

  const assertion = (credential) => ({
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: toText(credential.response.authenticatorData),
      clientDataJSON: toText(credential.response.clientDataJSON),
      signature: toText(credential.response.signature),
      userHandle: credential.response.userHandle ? toText(credential.response.userHandle) : null,
    },
    extensions: {},
  });

  const attestation = (credential) => ({
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: toText(credential.response.attestationObject),
      clientDataJSON: toText(credential.response.clientDataJSON),
    },
    extensions: {},
  });

  const supported = () => typeof window.PublicKeyCredential === "function";

  // Sign-in.
  const form = document.querySelector("form[data-passkey-login]");
  if (form && supported()) {
    const block = document.querySelector("[data-passkey-only]");
    const button = document.querySelector("[data-passkey-button]");
    const errorBox = document.querySelector("[data-passkey-error]");
    let pending = null;

    const signIn = async (conditional) => {
      if (pending) pending.abort();
      const controller = new AbortController();
      pending = controller;
      const started = await post(form.dataset.passkeyLogin);
      const request = { publicKey: requestOptions(started.options.publicKey), signal: controller.signal };
      if (conditional) request.mediation = "conditional";
      const credential = await navigator.credentials.get(request);
      const returnTo = form.querySelector('input[name="return_to"]');
      const done = await post(form.dataset.passkeyFinish, {
        credential: assertion(credential),
        return_to: returnTo ? returnTo.value : "",
      });
      window.location.assign(done.redirect);
    };

    if (block) block.hidden = false;
    if (button) {
      button.addEventListener("click", () => {
        if (errorBox) errorBox.hidden = true;
        signIn(false).catch((e) => showError(errorBox, e));
      });
    }
    if (typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
        if (available) signIn(true).catch((e) => showError(errorBox, e));
      });
    }
  }

  // Adding a passkey.
  const register = document.querySelector("[data-passkey-register]");
  if (register && supported()) {
    const errorBox = register.querySelector("[data-passkey-error]");
    register.querySelectorAll("[data-passkey-add]").forEach((el) => { el.hidden = false; });
    const add = register.querySelector("button[data-passkey-add]");
    const name = register.querySelector('input[name="passkey_name"]');
    add.addEventListener("click", async () => {
      if (errorBox) errorBox.hidden = true;
      try {
        const started = await post(register.dataset.passkeyRegister);
        const credential = await navigator.credentials.create({ publicKey: creationOptions(started.options.publicKey) });
        const done = await post(register.dataset.passkeyRegisterFinish, {
          credential: attestation(credential),
          name: name && name.value ? name.value : "Passkey",
        });
        window.location.assign(done.redirect);
      } catch (e) {
        showError(errorBox, e);
      }
    });
  }

  // Passkey-only sign-up.
  const signup = document.querySelector("form[data-passkey-signup]");
  if (signup && supported()) {
    const errorBox = signup.querySelector("[data-passkey-error]");
    signup.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (errorBox) errorBox.hidden = true;
      try {
        const started = await post(signup.dataset.passkeySignup, {
          username: signup.querySelector('input[name="username"]').value,
          email: signup.querySelector('input[name="email"]').value,
        });
        const credential = await navigator.credentials.create({ publicKey: creationOptions(started.options.publicKey) });
        const done = await post(signup.dataset.passkeySignupFinish, { credential: attestation(credential) });
        window.location.assign(done.redirect);
      } catch (e) {
        showError(errorBox, e);
      }
    });
  }
})();
