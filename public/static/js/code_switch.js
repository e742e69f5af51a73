// A second-factor code box (the code_field macro, bankapp/templates/_forms.html) switches in
// place between the app's 6-digit code (the numeric keypad) and a recovery code (the full
// keyboard: it has letters), keeping what the rest of the form holds. The choice goes into the
// form's address (?with=recovery), so the page drawn again after a refusal keeps it. Without
// this script the links load the page in the other mode.
"use strict";

document.querySelectorAll("[data-code-switch]").forEach((box) => {
  if (box.dataset.ready) return;  // the macro may bring this script more than once
  box.dataset.ready = "yes";
  const input = document.getElementById(box.dataset.codeSwitch);
  if (!input || !input.form) return;
  const label = input.labels && input.labels[0];
  box.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-mode]");
    if (!link) return;
    event.preventDefault();
    const recovery = link.dataset.mode === "recovery";
    input.inputMode = recovery ? "text" : "numeric";
    input.autocomplete = recovery ? "off" : "one-time-code";
    if (label && link.dataset.label) label.textContent = link.dataset.label;
    for (const other of box.querySelectorAll("a[data-mode]")) other.hidden = other === link;
    const action = new URL(input.form.getAttribute("action") || window.location.href,
                           window.location.href);
    if (recovery) action.searchParams.set("with", "recovery");
    else action.searchParams.delete("with");
    input.form.setAttribute("action", action.pathname + action.search);
    input.focus();
  });
});
