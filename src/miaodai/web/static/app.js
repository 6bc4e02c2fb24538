// Miaodai H5: small improvements over forms that work without JavaScript.
"use strict";

// A resend button stays disabled until the code may be sent again, counting down.
document.querySelectorAll("[data-countdown]").forEach((button) => {
  let left = parseInt(button.dataset.countdown, 10) || 0;
  const label = button.textContent;
  const template = button.dataset.countdownLabel || "%(seconds)s";
  const tick = () => {
    if (left <= 0) { button.disabled = false; button.textContent = label; return; }
    button.disabled = true;
    button.textContent = template.replace("%(seconds)s", String(left));
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
});

// A live quote: a form marked data-live asks the server for the same page and swaps in its result,
// so the figures always come from the server's quote engine (nothing is computed here).
document.querySelectorAll("form[data-live]").forEach((form) => {
  let timer = null;
  const refresh = async () => {
    // Hidden fields (the CSRF token, a form's idempotency key) stay out of the URL.
    const fields = new FormData(form);
    form.querySelectorAll("input[type=hidden]").forEach((hidden) => fields.delete(hidden.name));
    const url = form.action + "?" + new URLSearchParams(fields).toString();
    const response = await fetch(url, { headers: { "X-Live": "1" } });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const selector of [".quote", ".problem"]) {
      const fresh = page.querySelector(selector);
      const old = document.querySelector(selector);
      if (old && fresh) old.replaceWith(fresh);
      else if (old) old.remove();
      else if (fresh) form.after(fresh);
    }
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300); });
});

// A card number groups in fours as it is typed (6222 0288 0000 0000 021), as on the card, with the caret kept
// after the same digit; a pasted number is grouped too. Anything but digits, spaces and hyphens is left as typed
// for the server to explain. The server reads the number without its spaces.
document.querySelectorAll("input[data-group-digits]").forEach((input) => {
  const size = parseInt(input.dataset.groupDigits, 10) || 4;
  const group = () => {
    const typed = input.value.normalize("NFKC");
    if (!/^[\d\s-]*$/.test(typed)) return;
    const caret = input.selectionStart ?? typed.length;
    const digitsBefore = typed.slice(0, caret).replace(/\D/g, "").length;
    const grouped = typed.replace(/\D/g, "").replace(new RegExp(`(\\d{${size}})(?=\\d)`, "g"), "$1 ");
    if (grouped === input.value) return;
    input.value = grouped;
    let at = 0;
    for (let seen = 0; at < grouped.length && seen < digitsBefore; at += 1) if (grouped[at] !== " ") seen += 1;
    input.setSelectionRange(at, at);
  };
  input.addEventListener("input", group);
  group();
});

// Bank detection while a card number is typed (input[data-bank-lookup]): only the first 6 digits, then the
// first 10, are sent — the BIN, never the whole number — and the bank and card type are shown beside the
// field. The server's check when the form is sent is what counts; this only says it sooner.
document.querySelectorAll("input[data-bank-lookup]").forEach((input) => {
  const out = document.getElementById(input.dataset.bankLookup);
  let asked = "";
  const show = async () => {
    const digits = input.value.normalize("NFKC").replace(/[\s-]/g, ""); // full-width digits too
    const prefix = /^\d+$/.test(digits) ? digits.slice(0, digits.length >= 10 ? 10 : 6) : "";
    if (prefix.length < 6) { asked = ""; out.textContent = ""; delete out.dataset.state; return; }
    if (prefix === asked) return;
    asked = prefix;
    const response = await fetch(input.dataset.bankUrl + "?" + new URLSearchParams({ prefix }));
    const found = await response.json();
    if (asked !== prefix) return; // typed on meanwhile
    out.textContent = found.found ? found.text + (found.note ? " · " + found.note : "") : "";
    if (found.found) out.dataset.state = found.supported ? "ok" : "bad"; else delete out.dataset.state;
  };
  input.addEventListener("input", show);
  show();
});

// A part of the page still changing on the server (a payout at the bank: [data-poll][id], the value in
// seconds) is fetched again and swapped in until the fresh copy is no longer marked.
document.querySelectorAll("[data-poll][id]").forEach((part) => {
  const every = (parseInt(part.dataset.poll, 10) || 3) * 1000;
  const poll = async () => {
    let fresh = null;
    try {
      const response = await fetch(location.href, { headers: { "X-Live": "1" } });
      fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById(part.id);
      const current = document.getElementById(part.id);
      if (fresh && current) current.replaceWith(fresh);
    } catch (error) {
      fresh = null; // offline for a moment: try again
    }
    if (!fresh || fresh.hasAttribute("data-poll")) setTimeout(poll, every);
  };
  setTimeout(poll, every);
});

// The repay form ([data-repay]): show only the fields that matter for what is chosen — the amount for what is due
// or a part, the term-or-installment choice for a part ([data-show-for] lists the choices a field serves). Without
// JavaScript every field shows and the server ignores those the choice does not use.
document.querySelectorAll("form[data-repay]").forEach((form) => {
  const sync = () => {
    const chosen = (form.querySelector("input[name=what]:checked") || {}).value || "due";
    form.querySelectorAll("[data-show-for]").forEach((part) => {
      part.hidden = !part.dataset.showFor.split(" ").includes(chosen);
    });
  };
  form.querySelectorAll("input[name=what]").forEach((radio) => radio.addEventListener("change", sync));
  form.classList.add("js"); // hints only a form without this script needs (.no-js) go
  sync();
});

// A resident ID number's typos are caught as it is typed (GB 11643-1999): 18 characters, digits with an X last
// at most, a real birth date in characters 7-14, and the check digit. The server checks the same before asking
// the carrier (and a typo never uses up an attempt); this only spares the round trip. The words are the
// server's, from the input's data attributes.
document.querySelectorAll("input[data-resident-id]").forEach((input) => {
  const out = document.getElementById(input.dataset.residentId);
  const form = input.form;
  const typo = () => {
    const id = input.value.normalize("NFKC").replace(/\s/g, "").toUpperCase();
    if (id.length !== 18) return input.dataset.wrongLength;
    if (!/^\d{17}[\dX]$/.test(id)) return input.dataset.badCharacters;
    const [y, m, d] = [id.slice(6, 10), id.slice(10, 12), id.slice(12, 14)].map(Number);
    const born = new Date(Date.UTC(y, m - 1, d));
    if (born.getUTCFullYear() !== y || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d) {
      return input.dataset.badBirthDate;
    }
    const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const sum = weights.reduce((total, w, i) => total + w * Number(id[i]), 0);
    return "10X98765432"[sum % 11] === id[17] ? "" : input.dataset.badChecksum;
  };
  const show = (text) => {
    out.textContent = text;
    input.setAttribute("aria-invalid", text ? "true" : "false");
  };
  input.addEventListener("input", () => { if (out.textContent && !typo()) show(""); });
  input.addEventListener("blur", () => { if (input.value.trim().length >= 18) show(typo()); });
  form.addEventListener("submit", (event) => {
    const found = typo();
    if (!found) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    show(found);
    input.focus();
  });
});

// A form that is sent shows it is busy until the next page comes: its submit button turns into a spinner with the
// form's data-wait text (what it waits for and how long that usually takes, for an outside party), and a second
// tap sends nothing. The button is not disabled (a disabled submitter's name and value would be left out of what
// is sent); later submits are refused instead. Coming back to the page (the browser's Back) makes it ready again.
// Money-moving forms carry their own idempotency key as well: the server never acts twice on one.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || form.method.toLowerCase() !== "post") return;
  if (form.dataset.busy) { event.preventDefault(); return; }
  form.dataset.busy = "1";
  form.setAttribute("aria-busy", "true");
  const button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
  if (button) {
    button.classList.add("is-busy");
    button.setAttribute("aria-disabled", "true");
  }
  if (form.dataset.wait) {
    const note = document.createElement("p");
    note.className = "waiting";
    note.setAttribute("role", "status");
    note.textContent = form.dataset.wait;
    (button || form.lastElementChild).after(note);
  }
});
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll("form[data-busy]").forEach((form) => {
    delete form.dataset.busy;
    form.removeAttribute("aria-busy");
    form.querySelectorAll(".is-busy").forEach((b) => { b.classList.remove("is-busy"); b.removeAttribute("aria-disabled"); });
    form.querySelectorAll(".waiting").forEach((n) => n.remove());
  });
});
