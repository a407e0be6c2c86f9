"""The /review page and the console's "识别有误" flag in headless Chromium, against a real
desk process (its own SQLite store, a tracker store written here, a copy of the training
data for the page's labelling). The screenshot goes to var/test-pages/review.png
(`make screenshots`: reports/pages/review.png)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from kefu.store.conversations import ConversationStore
from kefu.store.sql import open_database, utcnow
from tests.desk import test_pages
from tests.desk.test_pages import SHOTS, no_script_ran, open_in_queue, wait
from tests.desk.test_review import EVENTS
from tests.processes import answers, free_port, start

pytestmark = [pytest.mark.slow, pytest.mark.servers]  # starts kefu's processes
browser = test_pages.browser  # the same headless Chromium fixture
ROOT = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=window.__xss=1>能用数字人民币吗"

# (texts of a chat: visitor lines with what Rasa made of them, bot lines), handed over?
CHATS = [
    (
        [
            ("v", "你们支持数字人民币付款吗", "nlu_fallback", 0.21),
            ("b", "抱歉，可能我没有表达清楚，请您换个说法再说一遍好吗？"),
        ],
        None,
    ),
    (
        [
            ("v", "你們支持數字人民幣付款嗎？", "nlu_fallback", 0.23),
            ("b", "抱歉，可能我没有表达清楚，请您换个说法再说一遍好吗？"),
        ],
        None,
    ),
    (
        [
            ("v", "你好", "greet", 0.97),
            ("b", "您好，请问有什么可以帮您？"),
            ("v", "你们支持数字人民币付款吗", "nlu_fallback", 0.2),
            ("b", "抱歉，可能我没有表达清楚，请您换个说法再说一遍好吗？"),
        ],
        None,
    ),
    (
        [
            ("v", "订单2023112500123456能开收据吗", "query_order", 0.41),
            ("b", "请问您的订单号是多少？"),
        ],
        None,
    ),
    (
        [
            ("v", "我家猫把快递盒咬烂了算谁的", "complain", 0.38),
            ("b", "非常抱歉给您带来了不好的体验。"),
        ],
        None,
    ),
    (
        [
            ("v", "呃呃 那个那个", "nlu_fallback", 0.12),
            ("b", "抱歉，可能我没有表达清楚，请您换个说法再说一遍好吗？"),
            ("v", "zzzz qqq!!", "nlu_fallback", 0.12),
            ("b", "为您转接人工客服，请稍候。"),
        ],
        "bot_failure",
    ),
    (
        [
            ("v", XSS, "nlu_fallback", 0.2),
            ("b", "抱歉，可能我没有表达清楚，请您换个说法再说一遍好吗？"),
        ],
        None,
    ),
    (
        [
            ("v", "我要的是那个蓝色的不是这个", "greet", 0.6),
            ("b", "您好，请问有什么可以帮您？"),
            ("v", "帮我转人工", "ask_human", 0.99),
        ],
        "customer_request",
    ),
]


async def seed(database_url: str, tracker: Path) -> dict:
    db = sqlite3.connect(tracker)
    db.execute(EVENTS)
    store = ConversationStore(open_database(database_url))
    ids = {}
    for n, (lines, handed_over) in enumerate(CHATS):
        conversation = await store.create_conversation(f"chat{n:02d}" + "0" * 24, "hash")
        for line in lines:
            message = await store.add_message(
                conversation.id, "visitor" if line[0] == "v" else "bot", line[1]
            )
            if line[0] == "v":
                _, text, intent, confidence = line
                ranking = [{"name": intent, "confidence": confidence}]
                if intent == "nlu_fallback":
                    ranking.append({"name": "faq", "confidence": confidence - 0.05})
                at = message.created_at + timedelta(milliseconds=200)
                data = {
                    "event": "user",
                    "timestamp": at.timestamp(),
                    "text": text,
                    "parse_data": {
                        "intent": {"name": intent, "confidence": confidence},
                        "intent_ranking": ranking,
                    },
                }
                db.execute(
                    "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
                    "VALUES (?, 'user', ?, ?, ?)",
                    (conversation.id, at.timestamp(), intent, json.dumps(data, ensure_ascii=False)),
                )
        if handed_over:
            await store.transition(
                conversation.id,
                ("bot",),
                status="queued",
                reason=handed_over,
                waiting_since=utcnow(),
                priority=40,
            )
        ids[n] = conversation.id
    db.commit()
    db.close()
    await store.close()
    return ids


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    work = tmp_path_factory.mktemp("review-page")
    home = work / "project"
    home.mkdir()
    shutil.copy(ROOT / "domain.yml", home / "domain.yml")
    for folder in ("data", "policy", "tests/nlu"):
        shutil.copytree(ROOT / folder, home / folder)
    database_url = f"sqlite:///{work / 'kefu.db'}"
    ids = asyncio.run(seed(database_url, work / "tracker.db"))
    (work / "endpoints.yml").write_text(
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {work / 'tracker.db'}\n"
    )
    port = free_port()
    env = {
        "KEFU_HOME": str(home),
        "KEFU_DATABASE_URL": database_url,
        "KEFU_RASA_ENDPOINTS": str(work / "endpoints.yml"),
        "KEFU_RASA_URL": "http://127.0.0.1:9",
        "KEFU_ACTION_SERVER_URL": "",
    }
    argv = [sys.executable, "-m", "kefu.desk", "--host", "127.0.0.1", "--port", str(port)]
    started = start(
        "desk", argv, work / "desk.log", answers(f"http://127.0.0.1:{port}/healthz"), env
    )
    yield f"http://127.0.0.1:{port}", home, ids
    started.stop()


def sign_in(browser, url):
    """Both pages share the agent's sign-in (sessionStorage): sign in when asked to."""
    browser.get(url)
    wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "login").is_displayed()
            or d.find_elements(By.CSS_SELECTOR, "#inbox:not([hidden]), #console:not([hidden])")
        ),
    )
    if browser.find_element(By.ID, "login").is_displayed():
        browser.find_element(By.ID, "username").send_keys("demo")
        browser.find_element(By.ID, "password").send_keys("demo")
        browser.find_element(By.CSS_SELECTOR, "#login-form button").click()


def cards(browser):
    return browser.find_elements(By.CSS_SELECTOR, "#items .card")


def test_the_review_page_lists_groups_and_labels(desk, browser):
    url, home, ids = desk
    sign_in(browser, url + "/review")
    wait(browser, lambda d: len(cards(d)) >= 5)
    first = cards(browser)[0]
    # One text in three chats, simplified and traditional, most frequent first.
    assert first.find_element(By.CSS_SELECTOR, ".card-text").text == "你们支持数字人民币付款吗"
    assert first.find_element(By.CSS_SELECTOR, ".count").text.startswith("3")
    assert "没听懂" in first.text and "faq" in first.text
    context = first.find_elements(By.CSS_SELECTOR, ".context .msg")
    assert any("请您换个说法" in m.text for m in context)
    texts = [c.find_element(By.CSS_SELECTOR, ".card-text").text for c in cards(browser)]
    assert XSS in texts and no_script_ran(browser)
    assert "zzzz qqq!!" in texts  # the message the bot failed on before the hand-over
    assert "订单2023112500123456能开收据吗" in texts
    browser.set_window_size(1280, 1400)
    browser.save_screenshot(str(SHOTS / "review.png"))
    browser.set_window_size(1280, 900)

    # Label the first one from the page: it lands in the copy's training data.
    form = first.find_element(By.CSS_SELECTOR, "form.label")
    Select(form.find_element(By.TAG_NAME, "select")).select_by_value("faq/payment")
    form.find_element(By.TAG_NAME, "button").click()
    wait(browser, lambda d: "已写入" in form.text or "error" in form.get_attribute("innerHTML"))
    assert "已写入 policy/faq.yml" in form.text, form.text
    assert "你们支持数字人民币付款吗" in (home / "policy/faq.yml").read_text("utf-8")

    Select(browser.find_element(By.ID, "reason")).select_by_value("bot_failure")
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    wait(browser, lambda d: len(cards(d)) == 1)
    assert cards(browser)[0].find_element(By.CSS_SELECTOR, ".card-text").text == "zzzz qqq!!"


def test_the_console_flags_a_misunderstood_message(desk, browser):
    url, _home, ids = desk
    sign_in(browser, url + "/agent")
    wait(browser, ec.visibility_of_element_located((By.ID, "console")))
    # Signing in sets the supervisor online, and automatic assignment may give them the chat.
    for view in ("mine", "queue", "mine"):
        try:
            open_in_queue(browser, ids[7], view=view)
            break
        except TimeoutException:
            continue
    else:
        raise AssertionError("the handed-over chat is in neither the queue nor mine")
    wait(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#transcript .msg.visitor .flag-wrong")
    )
    message = [
        m
        for m in browser.find_elements(By.CSS_SELECTOR, "#transcript .msg.visitor")
        if "蓝色" in m.text
    ][0]
    message.find_element(By.CSS_SELECTOR, ".flag-wrong").click()
    form = wait(browser, lambda d: message.find_element(By.CSS_SELECTOR, ".flag-form"))
    Select(form.find_element(By.TAG_NAME, "select")).select_by_value("request_return")
    form.find_element(By.TAG_NAME, "button").click()
    wait(browser, lambda d: "已标记" in message.text)
    assert "request_return" in message.text
    browser.save_screenshot(str(SHOTS / "agent-flag.png"))

    browser.get(url + "/review")
    wait(browser, lambda d: len(cards(d)) >= 1)
    Select(browser.find_element(By.ID, "reason")).select_by_value("corrected")
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    wait(browser, lambda d: len(cards(d)) == 1 and "客服纠正" in cards(d)[0].text)
    card = cards(browser)[0]
    assert card.find_element(By.CSS_SELECTOR, ".card-text").text == "我要的是那个蓝色的不是这个"
    assert "request_return" in card.text and "greet" in card.text
