"""The reading room in a real browser: Debian's Chromium, headless, driven through Debian's
ChromeDriver by Selenium (nothing downloaded), over a copy of the warehouse a real ingest of the
sample filled. An analyst reads a story, marks an article not relevant, searches, subscribes,
receives a real digest from a real SMTP server on 127.0.0.1 and unsubscribes by its link.

Each page is photographed on the way (full page, PNG): into the test's folder, or into
``$SCREENSHOTS_DIR`` (``make screenshots`` writes docs/screenshots/).
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from newsmon.core.settings import DEFAULT_CONFIG_DIR, Secret, Settings
from newsmon.flows.digest import all_subscriptions, run_digest
from newsmon.web.app import WebConfig
from tests.helpers import copy_warehouse, immediate_alerts, rows
from tests.smtpserver import Handler, smtp_server
from tests.web.room import SECRET, TOPIC, serving

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:  # a failure that says how to mend it, not a skip
        pytest.fail(
            f"{', '.join(missing)} not found: `make browser` installs Debian's chromium and "
            "chromium-driver (or set CHROMIUM / CHROMEDRIVER)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def shows(driver: WebDriver, text: str) -> bool:
    """Whether the page shows ``text`` once the navigation a click started has ended."""
    try:
        WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: text in d.find_element(By.TAG_NAME, "main").text
        )  # (the old page's element goes stale while the next one loads)
    except TimeoutException:
        return False
    return True


def photograph(driver: WebDriver, folder: Path, name: str) -> None:
    """The whole page, beyond the window, as docs/screenshots/NAME.png would show it."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    png = base64.b64decode(shot["data"])
    assert png.startswith(PNG) and len(png) > 5_000, name
    (folder / f"{name}.png").write_bytes(png)


def test_an_analyst_reads_labels_searches_subscribes_and_unsubscribes_in_chromium(
    browser: WebDriver, warehouse: Path, tmp_path: Path
) -> None:
    db = copy_warehouse(warehouse, tmp_path)
    alerts = immediate_alerts(tmp_path / "alerts.toml")
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    config = WebConfig(db, (TOPIC,), SECRET, alerts_path=alerts)
    with serving(config) as site:
        # read a story: the list, then the best copy's page
        browser.get(f"{site}/?topic={TOPIC}&order=best")
        titles = browser.find_elements(By.CSS_SELECTOR, "ol.stories a.title")
        assert titles and browser.title == "Stories · newsmon"
        assert not browser.find_elements(By.TAG_NAME, "script")  # the hostile title is text
        photograph(browser, shots, "stories")
        first = titles[0].text
        titles[0].click()
        assert browser.find_element(By.TAG_NAME, "h1").text == first
        assert shows(browser, "Why it matched")
        article_id = browser.current_url.rsplit("/", 1)[1]
        photograph(browser, shots, "article")

        # mark it not relevant: one click, the label is in the warehouse
        browser.find_element(
            By.CSS_SELECTOR, "form[action$='/label'] button[value='not_relevant']"
        ).click()
        assert shows(browser, "Recorded: not relevant")
        assert rows(db, "SELECT topic, relevant, labelled_by FROM labels WHERE article_id = ?",
                    [article_id]) == [(TOPIC, False, "local")]  # fmt: skip

        # search
        browser.find_element(By.LINK_TEXT, "Search").click()
        box = browser.find_element(By.NAME, "q")
        box.send_keys("NATO")
        box.submit()
        results = browser.find_elements(By.CSS_SELECTOR, "ol.stories a.title")
        assert results and "result" in browser.find_element(By.CLASS_NAME, "count").text
        photograph(browser, shots, "search")

        browser.find_element(By.LINK_TEXT, "Feeds").click()
        assert browser.find_elements(By.CSS_SELECTOR, "table.feeds tbody tr")
        photograph(browser, shots, "feeds")

        # subscribe: the form, filled as an analyst would
        browser.find_element(By.LINK_TEXT, "Alerts").click()
        browser.find_element(By.LINK_TEXT, "New subscription").click()
        browser.find_element(By.NAME, "name").send_keys("my-flash")
        browser.find_element(By.NAME, "recipients").send_keys("me@example.org")
        Select(browser.find_element(By.NAME, "frequency")).select_by_visible_text("immediate")
        minimum = browser.find_element(By.NAME, "min_score")
        minimum.clear()
        minimum.send_keys("0.5")
        photograph(browser, shots, "alert-form")
        browser.find_element(By.CSS_SELECTOR, "form.alert-form button[type=submit]").click()
        assert shows(browser, "Saved: my-flash.")
        photograph(browser, shots, "alerts")
        assert rows(db, "SELECT name, recipients, frequency, created_by FROM subscriptions") == [
            ("my-flash", ["me@example.org"], "immediate", "local")
        ]

        # the digest flow sends it; the e-mail's unsubscribe link, opened in the browser
        mine = next(s for s in all_subscriptions(alerts, DEFAULT_CONFIG_DIR / "topics.toml",
                                                  db)[0] if s.name == "my-flash")  # fmt: skip
        handler = Handler()
        with smtp_server(handler) as (host, port):
            settings = Settings(
                smtp_host=host, smtp_port=port, smtp_security="none", web_url=site,
                web_secret=Secret(SECRET.decode()),
            )  # fmt: skip
            assert run_digest(db, mine, settings, alerts_file=str(alerts)).status == "sent"
        (received,) = handler.messages
        link = received.message["List-Unsubscribe"].strip("<>")
        browser.get(link)
        assert shows(browser, "Stop the digests of “my-flash” to me@example.org?")
        photograph(browser, shots, "unsubscribe")
        browser.find_element(By.CSS_SELECTOR, "main form button").click()
        assert shows(browser, "me@example.org gets no more digests of “my-flash”.")
        assert rows(db, "SELECT subscription, recipient, via FROM unsubscribes") == [
            ("my-flash", "me@example.org", "link")
        ]
    assert sorted(p.name for p in shots.iterdir()) == [
        "alert-form.png", "alerts.png", "article.png", "feeds.png", "search.png",
        "stories.png", "unsubscribe.png",
    ]  # fmt: skip
