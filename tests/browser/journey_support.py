"""Steps of the borrower's journey in the browser that several browser tests take: signing up, verifying with the
carrier check's consents agreed to in place, applying, signing a contract with a fresh code. Labels are the
zh-CN ones (the app's default language); the sandbox values are those of docs/sandbox.md."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.conftest import PHONE_VIEWPORT
from tests.browser.test_web_login import snap
from tests.helpers import latest_code

NAME = "王小明"
CARRIER_CONSENTS = ("隐私政策", "用户服务协议", "运营商信息授权书")


def phone_context(browser: Browser, **options) -> BrowserContext:
    return browser.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True,
                               locale="zh-CN", **options)


def sign_up(page: Page, client, live_server: str, phone: str, *, shots: str | None = None) -> None:
    """A new phone number from the start page's link to the login page: the account is made, the start page
    follows."""
    page.goto(f"{live_server}/app")
    page.get_by_role("link", name="登录 / 注册").click()
    page.get_by_label("手机号").fill(phone)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_label("验证码").fill(latest_code(client, phone))
    if shots:
        snap(page, f"{shots}-00-login-code")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("h1")).to_have_text("首页")


def agree_in_place(page: Page, titles: tuple[str, ...] = CARRIER_CONSENTS) -> None:
    """The carrier check's consents, agreed to one by one on the verification page."""
    for title in titles:
        page.get_by_role("button", name=f"同意《{title}》").click()
        expect(page.get_by_role("button", name=f"同意《{title}》")).to_have_count(0)


def verify(page: Page, id_number: str) -> None:
    page.get_by_label("姓名（与身份证一致）").fill(NAME)
    page.get_by_label("身份证号码").fill(id_number)
    page.get_by_role("button", name="核验姓名和身份证号码").click()


def biggest_text(page: Page) -> str:
    """The text of the element drawn in the largest font (what the eye meets first)."""
    return page.evaluate("""() => {
        let best = null, size = 0;
        for (const el of document.querySelectorAll('main *')) {
            if (!el.childElementCount && el.textContent.trim()) {
                const s = parseFloat(getComputedStyle(el).fontSize);
                if (s > size) { size = s; best = el; }
            }
        }
        return best.textContent.trim();
    }""")


def assert_above_the_fold(page: Page, element: Locator) -> None:
    """``element`` lies wholly on the first screen: inside the viewport before any scrolling, and above the tab bar
    fixed to the screen's bottom edge (which would cover it)."""
    page.evaluate("window.scrollTo(0, 0)")
    box = element.bounding_box()
    assert box is not None, "not drawn"
    bottom = page.viewport_size["height"]
    tabs = page.locator(".tabs")
    if tabs.count():
        bottom = min(bottom, tabs.first.bounding_box()["y"])
    assert box["y"] >= 0 and box["y"] + box["height"] <= bottom, (box, bottom)


def onboard(page: Page, client, live_server: str, phone: str, id_number: str, *, shots: str | None = None) -> None:
    """Sign up, verify, agree to everything, and arrive at the credit form (screenshots under ``shots``)."""
    sign_up(page, client, live_server, phone, shots=shots)
    journey = page.get_by_test_id("journey")
    expect(journey.locator('[data-state="current"]')).to_have_attribute("data-step", "verify")
    if shots:
        snap(page, f"{shots}-01-start")
    journey.get_by_role("link", name="开始").click()
    expect(page.get_by_test_id("consents-needed")).to_be_visible()
    titles = CARRIER_CONSENTS
    if shots:  # the first one read in full before agreeing
        snap(page, f"{shots}-02-verify-consents-first")
        page.get_by_test_id("consent-privacy_policy").get_by_role("link", name="阅读全文").click()
        expect(page.get_by_test_id("document")).to_contain_text("秒贷隐私政策 1.0")
        snap(page, f"{shots}-03-privacy-policy")
        page.get_by_role("button", name="同意《隐私政策》").click()
        expect(page.locator("h1")).to_have_text("实名认证")
        titles = titles[1:]
    agree_in_place(page, titles)
    expect(page.get_by_test_id("identity-form")).to_be_visible()
    if shots:
        snap(page, f"{shots}-04-identity-form")
    verify(page, id_number)
    expect(page.get_by_test_id("face")).to_be_visible()
    expect(page.get_by_test_id("steps")).to_contain_text("王*")
    if shots:
        snap(page, f"{shots}-05-face")
    page.get_by_role("button", name="开始人脸识别").click()
    expect(page.get_by_test_id("verified")).to_contain_text("实名认证已完成")
    if shots:
        snap(page, f"{shots}-06-verified")
    page.get_by_test_id("next-step").click()
    expect(page.locator("h1")).to_have_text("授权管理")
    page.get_by_role("button", name="同意《征信查询授权书》").click()
    expect(page.locator('[data-state="in_force"]')).to_have_count(4)
    if shots:
        snap(page, f"{shots}-07-consents")
    page.get_by_test_id("next-step").click()
    expect(page.get_by_test_id("apply-form")).to_be_visible()


def fill_application(page: Page, income: str = "20000") -> None:
    page.get_by_label("税后月收入（元）").fill(income)
    page.get_by_label("职业").select_option(label="企业职员")
    page.get_by_label("学历").select_option(label="本科")
    page.get_by_label("借款用途").select_option(label="家装家电")


def type_card(page: Page, number: str, label: str = "银行卡号") -> None:
    field = page.get_by_label(label)
    field.fill("")
    field.press_sequentially(number, delay=10)  # as a thumb types it: the bank shows before the end


def sign_with_fresh_code(page: Page, client, phone: str, clock=None) -> None:
    """From the contract page: to the signing page, ask for the code sent for this contract (every signing, however
    recent the login) and type it; the caller presses 同意并签署. ``clock`` (the test clock) is moved past the
    resend cooldown first when given."""
    if clock is not None:
        clock.advance(timedelta(seconds=61))
    page.get_by_role("link", name="已阅读，验证后签署").click()
    expect(page.locator("h1")).to_have_text("签署借款合同")
    page.get_by_role("button", name="获取签署验证码").click()
    expect(page.get_by_test_id("sign-code-sent")).to_contain_text("****")
    page.get_by_label("验证码").fill(latest_code(client, phone))
