"""/live in a real browser (Debian's Chromium, headless) against the real app on a loopback port: it is
part of the same app as the editor, with the editor's header, stylesheet and a way back."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("playwright.sync_api")

LIVE_IDS = ("view", "start", "reset", "blur", "blur-value", "status", "stats")  # what live.js looks up
HEADER = "() => getComputedStyle(document.querySelector('header.bar')).backgroundColor"


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A fresh page at `url`, and the console errors, page errors and failed requests it collects."""
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda response: response.status >= 400 and problems.append(f"{response.status}: {response.url}"),
    )
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page, problems


def test_live_page_has_the_editors_header_and_look(browser: Any, live_server: Any) -> None:
    editor, _ = open_page(browser, live_server.url)
    editor_header = editor.evaluate(HEADER)
    editor.close()

    page, problems = open_page(browser, f"{live_server.url}/live")
    assert page.locator("header.bar .brand").inner_text().strip() == "smartfocus"
    assert page.locator("header.bar .brand .logo").is_visible()
    sheets = page.evaluate("() => [...document.styleSheets].map((sheet) => sheet.href)")
    assert [href for href in sheets if href and href.endswith("/web/style.css")], sheets
    assert page.locator("style").count() == 0  # no look of its own
    assert page.evaluate(HEADER) == editor_header
    assert page.evaluate(HEADER) != page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    # the editor's buttons: the accent colour on the primary one
    start = page.locator("#start")
    assert "primary" in (start.get_attribute("class") or "") and "ghost" in page.locator(
        "#reset"
    ).get_attribute("class")
    for element_id in LIVE_IDS:
        assert page.locator(f"#{element_id}").count() == 1, element_id
    blur = page.locator("#blur")  # the server takes a strength in 0..1
    assert (blur.get_attribute("min"), blur.get_attribute("max")) == ("0", "1")
    assert page.locator("#blur-value").inner_text() == "60%"
    box = page.locator("#view").bounding_box()
    assert box is not None and abs(box["width"] * 9 - box["height"] * 16) < 16 * 2  # a 16:9 picture
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert (
        page.request.get(f"{live_server.url}{icon}").ok
        and page.request.get(f"{live_server.url}/favicon.ico").ok
    )
    assert problems == []
    page.close()


def test_live_and_editor_link_to_each_other(browser: Any, live_server: Any) -> None:
    page, problems = open_page(browser, f"{live_server.url}/live")
    back = page.locator("header.bar a[href='/']")
    assert back.is_visible() and "Editor" in back.inner_text()
    back.click()
    page.wait_for_url(f"{live_server.url}/")
    page.locator("#start").wait_for(state="visible")  # the editor's start page: drop a video
    assert page.locator("#drop").is_visible()

    page.locator("header.bar a[href='/live']").click()
    page.wait_for_url(f"{live_server.url}/live")
    assert page.locator("header.bar .brand").is_visible() and page.locator("video#view").count() == 1
    assert problems == []
    page.close()
