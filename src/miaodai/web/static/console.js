// Miaodai console: small improvements over pages that work without JavaScript.
"use strict";

// A form that moves money or changes an account is sent once: its button is disabled after the first click.
document.querySelectorAll("form[method=post]").forEach((form) => {
  form.addEventListener("submit", () => {
    form.querySelectorAll("button").forEach((button) => { button.disabled = true; });
  });
});
