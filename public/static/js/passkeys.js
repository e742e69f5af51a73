// Passkeys: the browser half of bankapp/identity/passkeys.py.
//
// Loaded (defer) only on pages with a passkey control; no inline script, so it runs under the
// CSP `default-src 'self'`. Each control names its ceremony in data-passkey:
//   sign-in        button: discoverable sign-in on the login page (both factors)
//   second-factor  button: the login's second step, after the password
//   register       form (name): add a passkey on the security page (after a recent sign-in)
//   confirm        form (hidden "assertion"): remove the last passkey
//   step-up        button inside a transfer's confirmation form: approve it (instead of the
//                  code) with an assertion bound to the form's "approval"; the assertion goes
//                  into the hidden "passkey_assertion" and the form is submitted
// The server answers options as JSON (binary fields base64url), errors as problem details
// whose `detail` is shown in the control's [data-passkey-error] element (role="alert").
(function () {
  "use strict";

  function toBytes(base64url) {
    const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map((item) => Object.assign({}, item, { id: toBytes(item.id) }));
  }

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: descriptors(json.allowCredentials),
    });
  }

  // The credential as JSON (WebAuthn L3 RegistrationResponseJSON / AuthenticationResponseJSON).
  function credentialJSON(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  }

  function csrfToken(control) {
    if (control.dataset.csrfToken) return control.dataset.csrfToken;
    const field = control.querySelector('input[name="csrf_token"]');
    if (field) return field.value;
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function postJSON(url, body, token) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
      body: JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (ignored) {
      data = null;
    }
    if (!response.ok) {
      throw new Error((data && data.detail) || `Something went wrong (${response.status}). Please try again.`);
    }
    return data;
  }

  // The browser's refusals, in words a customer can act on.
  function explain(error) {
    switch (error && error.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Try again when you are ready.";
      case "InvalidStateError":
        return "This device already holds a passkey for your account.";
      case "SecurityError":
        return "Passkeys need the site to be opened by its name (such as localhost), over HTTPS outside development.";
      case "NotSupportedError":
        return "This browser or device cannot make a passkey.";
      default:
        return (error && error.message) || "The passkey could not be used. Please try again.";
    }
  }

  function errorBox(control) {
    const scope = control.closest(".passkey-sign-in, .passkey-step-up") || control;
    return scope.querySelector("[data-passkey-error]");
  }

  function showError(control, message) {
    const box = errorBox(control);
    if (box) box.textContent = message;
  }

  async function signIn(button) {
    const token = csrfToken(button);
    const options = await postJSON(button.dataset.optionsUrl, {}, token);
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    const body = { credential: credentialJSON(credential) };
    if (button.dataset.next) body.next = button.dataset.next;
    const answer = await postJSON(button.dataset.verifyUrl, body, token);
    window.location.assign(answer.redirect);
  }

  async function register(form) {
    const token = csrfToken(form);
    const options = await postJSON(form.dataset.optionsUrl, {
      name: form.elements.name.value,
    }, token);
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    const answer = await postJSON(form.dataset.verifyUrl, { credential: credentialJSON(credential) }, token);
    window.location.assign(answer.redirect);
  }

  async function confirm(form) {
    const options = await postJSON(form.dataset.optionsUrl, {}, csrfToken(form));
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    form.elements.assertion.value = JSON.stringify(credentialJSON(credential));
    form.submit(); // an ordinary form post: the server answers with a page
  }

  async function stepUp(button) {
    const form = button.form;
    const options = await postJSON(button.dataset.optionsUrl,
      { approval: form.elements.approval.value }, csrfToken(form));
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    form.elements.passkey_assertion.value = JSON.stringify(credentialJSON(credential));
    form.elements.code.value = ""; // the passkey approves; a half-typed code is not sent
    form.submit(); // the confirming POST, as with a code: the server answers with a page
  }

  const CEREMONIES = {
    "sign-in": signIn, "second-factor": signIn, register: register, confirm: confirm, "step-up": stepUp,
  };

  function run(control, ceremony) {
    const trigger = control.tagName === "FORM" ? control.querySelector('[type="submit"]') : control;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(control, "This browser cannot use passkeys.");
      return;
    }
    showError(control, "");
    trigger.disabled = true;
    ceremony(control).catch((error) => {
      showError(control, explain(error));
      trigger.disabled = false;
    });
  }

  document.querySelectorAll("[data-passkey]").forEach((control) => {
    const ceremony = CEREMONIES[control.dataset.passkey];
    if (!ceremony) return;
    if (control.tagName === "FORM") {
      control.addEventListener("submit", (event) => {
        event.preventDefault();
        run(control, ceremony);
      });
    } else {
      control.addEventListener("click", () => run(control, ceremony));
    }
  });
}());
