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
    const url = form.action + "?" + new URLSearchParams(new FormData(form)).toString();
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
