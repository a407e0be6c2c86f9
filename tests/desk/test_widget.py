"""The website widget in headless Chromium: a shop's page on another origin (another
local port) embeds the chat with the one tag and has a conversation; a page on an
origin not in KEFU_ALLOWED_ORIGINS gets no working chat. Screenshots go to
var/test-pages/ (look at them)."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.desk.test_pages import SHOTS, wait
from tests.processes import answers, free_port, start

pytestmark = pytest.mark.slow

SHOP_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; background: #fafafa">
<h1>{title}</h1><p>{body}</p><a id="next" href="{next}">下一页</a>
<script src="{desk}/widget.js" async data-color="#e4393c" data-topic="invoice"></script>
</body></html>
"""
FORCED_FRAME = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>别的网站</title></head><body>
<h1>未获准的网站</h1>
<iframe id="forced" src="{desk}/widget?host={origin}" width="380" height="500"></iframe>
<script src="{desk}/widget.js" async></script>
</body></html>
"""


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, as tests/desk/test_pages.py drives it."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("Debian's chromium and chromium-driver are missing: run `make setup`")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1280,900",
        "--lang=zh-CN",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def sites(stack, tmp_path_factory):
    """The desk (allowing one shop), the shop's site, and a site that is not allowed."""
    work = tmp_path_factory.mktemp("widget")
    desk_port, shop_port, other_port = free_port(), free_port(), free_port()
    desk = f"http://127.0.0.1:{desk_port}"
    shop, other = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{other_port}"
    for name, origin in (("shop", shop), ("other", other)):
        root = work / name
        root.mkdir()
        pages = {
            "index.html": (
                "zh-CN",
                "乐购商城",
                "欢迎光临，有问题请点右下角的在线客服。",
                "page2.html",
            ),
            "page2.html": ("zh-CN", "乐购商城 · 第二页", "这是同一家店的另一页。", "index.html"),
            "hk.html": ("zh-HK", "樂購商城", "歡迎光臨。", "index.html"),
        }
        for page, (lang, title, body, following) in pages.items():
            html = SHOP_PAGE.format(lang=lang, title=title, body=body, next=following, desk=desk)
            (root / page).write_text(html, encoding="utf-8")
        (root / "forced.html").write_text(
            FORCED_FRAME.format(desk=desk, origin=origin), encoding="utf-8"
        )
    env = {
        "KEFU_RASA_URL": stack.rasa,
        "KEFU_RASA_TOKEN": stack.token,
        "KEFU_ACTION_SERVER_URL": stack.actions,
        "KEFU_DATABASE_URL": f"sqlite:///{work / 'desk.db'}",
        "KEFU_ALLOWED_ORIGINS": shop,
        "KEFU_RATE_PER_MINUTE": "100000",
    }
    argv = [sys.executable, "-m", "kefu.desk", "--port", str(desk_port)]
    started = [start("desk", argv, work / "desk.log", answers(desk + "/readyz"), env)]
    for name, port in (("shop", shop_port), ("other", other_port)):
        argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
        argv += ["--directory", str(work / name)]
        started.append(
            start(name, argv, work / f"{name}.log", answers(f"http://127.0.0.1:{port}/"))
        )
    yield {"desk": desk, "shop": shop, "other": other}
    for process in reversed(started):
        process.stop(signal.SIGINT, 30)


def bubbles(driver):
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-kefu-message]")]


def has(needle):
    return lambda d: any(needle in t for t in bubbles(d))


def enter_chat(driver):
    """Into the widget's iframe (drawn by the loader, opened by the launcher)."""
    driver.switch_to.default_content()
    frame = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "[data-kefu-frame]"))
    wait(driver, lambda d: frame.is_displayed())
    driver.switch_to.frame(frame)


def send(driver, text):
    driver.find_element(By.CSS_SELECTOR, "[data-kefu-input]").send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "[data-kefu-send]").click()


def test_an_allowed_shop_embeds_the_chat_and_keeps_it_across_pages(sites, browser):
    browser.switch_to.new_window("tab")
    browser.get(sites["shop"] + "/index.html")
    launcher = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-kefu-launcher]"))
    assert launcher.text == "在线客服"
    assert "228, 57, 60" in launcher.value_of_css_property("background-color")  # data-color
    launcher.click()
    enter_chat(browser)
    wait(browser, has("很高兴为您服务"), timeout=40)
    wait(browser, has("发票"))  # data-topic="invoice": that answer follows the greeting
    send(browser, "帮我查一下订单2023112500123456")
    wait(browser, has("顺丰速运"), timeout=60)
    state = browser.execute_script("return JSON.parse(localStorage.getItem('kefu.visitor'))")
    browser.switch_to.default_content()
    browser.save_screenshot(str(SHOTS / "widget-shop.png"))

    # Another page of the same shop: the chat reopens with the same conversation.
    browser.find_element(By.ID, "next").click()
    wait(browser, lambda d: "第二页" in d.title)
    enter_chat(browser)
    wait(browser, has("顺丰速运"), timeout=30)
    again = browser.execute_script("return JSON.parse(localStorage.getItem('kefu.visitor'))")
    assert again["id"] == state["id"]
    seqs = [
        int(e.get_attribute("data-seq"))
        for e in browser.find_elements(By.CSS_SELECTOR, ".messages li")
    ]
    assert seqs == list(range(1, len(seqs) + 1))

    # The network drops; the conversation moves on meanwhile; nothing is lost on return.
    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    wait(browser, lambda d: "dot off" in d.find_element(By.ID, "conn").get_attribute("class"))
    request = urllib.request.Request(
        f"{sites['desk']}/api/visitor/conversations/{state['id']}/messages",
        data=json.dumps({"text": "我在手机上又问了一句：能开发票吗"}).encode(),
        headers={"Authorization": f"Bearer {state['token']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    wait(browser, has("我在手机上又问了一句"), timeout=40)
    seqs = [
        int(e.get_attribute("data-seq"))
        for e in browser.find_elements(By.CSS_SELECTOR, ".messages li")
    ]
    assert seqs == list(range(1, len(seqs) + 1))

    # The agent console sees where the visitor writes from.
    login = urllib.request.Request(
        sites["desk"] + "/api/agent/login",
        data=json.dumps({"username": "demo", "password": "demo"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=30) as response:
        token = json.loads(response.read())["token"]
    detail = urllib.request.Request(
        f"{sites['desk']}/api/agent/conversations/{state['id']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(detail, timeout=30) as response:
        body = json.loads(response.read())
    assert body["channel"] == "widget" and body["summary"]["topic"] == "invoice"
    browser.switch_to.default_content()


def test_the_page_language_hint_is_followed(sites, browser):
    browser.switch_to.new_window("tab")
    browser.get(sites["shop"] + "/hk.html")
    launcher = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-kefu-launcher]"))
    assert launcher.text == "線上客服"
    launcher.click()
    enter_chat(browser)
    # The shop's conversation from the test before lives on: start this one afresh.
    browser.execute_script("localStorage.removeItem('kefu.visitor'); location.reload()")
    enter_chat(browser)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-HK"
    assert browser.find_element(By.CSS_SELECTOR, "[data-kefu-send]").text == "發送"
    wait(browser, lambda d: len(bubbles(d)) >= 1, timeout=40)
    assert "為您服務" in bubbles(browser)[0]  # the greeting in traditional script
    browser.switch_to.default_content()
    browser.save_screenshot(str(SHOTS / "widget-traditional.png"))


def test_an_origin_not_allowed_gets_no_working_chat(sites, browser):
    browser.switch_to.new_window("tab")
    browser.get(sites["other"] + "/index.html")
    time.sleep(4)  # the loader had every chance to draw
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-kefu-launcher]")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-kefu-frame]")
    browser.save_screenshot(str(SHOTS / "widget-not-allowed.png"))

    # A page there that frames the chat itself: the browser refuses to show it.
    browser.get(sites["other"] + "/forced.html")
    time.sleep(3)
    browser.switch_to.frame(browser.find_element(By.ID, "forced"))
    try:
        inputs = browser.find_elements(By.CSS_SELECTOR, "[data-kefu-input]")
    except (NoSuchElementException, WebDriverException):
        inputs = []
    assert not inputs and not bubbles(browser)
    browser.switch_to.default_content()
    browser.save_screenshot(str(SHOTS / "widget-forced-frame.png"))

    # The desk answers the Origin check only for the allowed shop.
    for origin, expected in ((sites["shop"], 200), (sites["other"], 403)):
        request = urllib.request.Request(
            sites["desk"] + "/widget/config", headers={"Origin": origin}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, allow = response.status, response.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as e:
            status, allow = e.code, e.headers.get("Access-Control-Allow-Origin")
        assert status == expected and allow == (origin if expected == 200 else None)
    with urllib.request.urlopen(sites["desk"] + "/widget", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {sites['shop']};" in policy
    assert sites["other"] not in policy
