"""A sent form answers at once in Chromium: its button turns into a spinner and the form says what it waits for.

(A second tap is refused by static/app.js too, but Chromium itself replaces a pending form navigation with the
next, so a test cannot tell the two apart by the requests sent; the money forms' idempotency keys are what
guarantee one action, and the server's tests prove those.)"""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.browser.journey_support import phone_context

PHONE = "13800138166"

# Runs after the app's own submit handler (window is reached after document): notes what the page shows the moment
# the form is sent.
WATCH = """window.addEventListener('submit', (event) => {
  const form = event.target, button = form.querySelector('button');
  if (sessionStorage.getItem('seen')) return;
  const status = document.querySelector('[role=status]');
  sessionStorage.setItem('seen', JSON.stringify({cls: button.className, disabled: button.getAttribute('aria-disabled'),
    busy: form.getAttribute('aria-busy'), status: status && status.textContent}));
});"""


def test_a_sent_form_shows_at_once_that_it_is_busy_and_what_it_waits_for(browser: Browser, live_server):
    context = phone_context(browser)
    page = context.new_page()
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    try:
        page.goto(f"{live_server}/app/login")
        page.evaluate(WATCH)
        page.get_by_label("手机号").fill(PHONE)
        page.get_by_role("button", name="获取验证码").click()
        expect(page.get_by_label("验证码")).to_be_visible()  # the answer came: the code page
        seen = page.evaluate("JSON.parse(sessionStorage.getItem('seen'))")
        assert seen == {"cls": "button primary is-busy", "disabled": "true", "busy": "true",
                        "status": "正在发送短信验证码，通常 1 分钟内送达。"}
        assert [url.rsplit("/app", 1)[1] for url in posts] == ["/login/code"]
    finally:
        context.close()
