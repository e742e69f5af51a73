// A payment form's destinations (the transfer form's, the scheduled payment's) never offer
// the source: the card of the account chosen under "From account" is hidden (and unchosen)
// among the customer's own accounts, the others shown. Without this script the server hides
// the source it drew the page with, and refuses a payment from an account to itself.
"use strict";

(() => {
  const form = document.querySelector("form[data-hides-source]");
  if (!form) return;
  const follow = () => {
    const source = form.querySelector("input[name=from_account]:checked");
    for (const card of form.querySelectorAll("label.choice-card[data-account]")) {
      const isSource = source !== null && card.dataset.account === source.value;
      card.hidden = isSource;
      const input = card.querySelector("input");
      if (isSource && input.checked) input.checked = false;
    }
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "from_account") follow();
  });
  follow();
})();
