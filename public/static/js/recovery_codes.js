// The recovery-codes page (templates/auth/recovery_codes.html): copy, download or print the
// codes. It all happens in the browser: the server keeps only hashes and cannot show them again.
"use strict";

document.querySelectorAll("[data-recovery-codes]").forEach((bar) => {
  const list = document.querySelector(bar.dataset.recoveryCodes);
  const status = document.getElementById("recovery-codes-status");
  const codes = [...list.querySelectorAll(".recovery-code")].map((code) => code.textContent.trim());
  const text = `${bar.dataset.fileTitle}\n\n${codes.join("\n")}\n`;

  const say = (message) => { if (status) status.textContent = message; };

  const actions = {
    copy() {
      if (!navigator.clipboard) { say(bar.dataset.copyFailed); return; }
      navigator.clipboard.writeText(text).then(
        () => say(bar.dataset.copied), () => say(bar.dataset.copyFailed));
    },
    download() {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      link.download = bar.dataset.fileName;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    },
    print() { window.print(); },
  };

  bar.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (button && actions[button.dataset.action]) actions[button.dataset.action]();
  });
  bar.hidden = false;
});
