"""The reading room's Alerts page and the digests' one-click unsubscribe, over real HTTP on a
copy of the sample warehouse: create, edit, pause, delete, the file's subscriptions beside them,
bad forms, and an unsubscribe link from a real digest sent to a real SMTP server."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from newsmon.core.settings import DEFAULT_CONFIG_DIR, Secret, Settings
from newsmon.core.signing import unsubscribe_token
from newsmon.flows.digest import all_subscriptions, run_digest
from newsmon.warehouse.store import connect
from newsmon.web.app import WebConfig
from newsmon.web.security import Access, hash_password
from tests.helpers import copy_warehouse, immediate_alerts, rows
from tests.smtpserver import Handler, smtp_server
from tests.web.room import SECRET, TOPIC, csrf_of, serving

TOPICS_FILE = DEFAULT_CONFIG_DIR / "topics.toml"
FORM = {
    "name": "mine",
    "recipients": "me@example.org, Boss@Example.org",
    "topics": TOPIC,
    "min_score": "0.3",
    "frequency": "daily",
    "at": "08:15",
    "day": "monday",
    "timezone": "Europe/Warsaw",
    "max_items": "10",
    "languages": "en, pl",
    "channel": "email",
    "url": "",
}


@pytest.fixture
def room(warehouse: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the sample warehouse and an alerts.toml with one subscription, "flash"."""
    db = copy_warehouse(warehouse, tmp_path)
    return db, immediate_alerts(tmp_path / "alerts.toml")


def stored(db: Path) -> list[tuple[object, ...]]:
    return rows(db, "SELECT name, recipients, min_score, paused, created_by, updated_by "
                    "FROM subscriptions ORDER BY name")  # fmt: skip


def test_a_subscription_made_edited_paused_and_deleted_on_the_alerts_page(
    room: tuple[Path, Path],
) -> None:
    db, alerts = room
    config = WebConfig(db, (TOPIC,), SECRET, alerts_path=alerts)
    with serving(config) as url, httpx.Client(base_url=url) as browser:
        page = browser.get("/alerts")
        assert page.status_code == 200 and "flash" in page.text and "None yet." in page.text
        token = csrf_of(browser.get("/alerts/new").text)
        assert browser.post("/alerts", data=FORM).status_code == 403  # no form token
        # the file's rules, the field named; nothing stored
        bad = browser.post("/alerts", data=FORM | {"csrf": token, "min_score": "2"})
        assert bad.status_code == 400 and "min_score" in bad.text and "from 0 to 1" in bad.text
        assert 'value="me@example.org, Boss@Example.org"' in bad.text  # what was typed, kept
        taken = browser.post("/alerts", data=FORM | {"csrf": token, "name": "flash"})
        assert taken.status_code == 400 and "alerts.toml" in taken.text
        hook = FORM | {"csrf": token, "channel": "slack", "url": "ftp://x"}
        assert browser.post("/alerts", data=hook).status_code == 400
        # a user's webhook obeys the feeds' address policy: not this machine, not metadata
        for inside in ("http://127.0.0.1:4200/api/x", "http://169.254.169.254/latest"):
            ssrf = browser.post("/alerts", data=hook | {"url": inside})
            assert ssrf.status_code == 400 and "refused to connect" in ssrf.text, inside
        odd = browser.post("/alerts", data=FORM | {"csrf": token + "é"})
        assert odd.status_code == 403  # a token that is not ASCII: refused, not a crash
        assert stored(db) == []

        made = browser.post("/alerts", data=FORM | {"csrf": token})
        assert made.status_code == 303 and made.headers["location"] == "/alerts?done=mine"
        again = browser.post("/alerts", data=FORM | {"csrf": token})
        assert again.status_code == 409 and "Name taken" in again.text
        edit = browser.get("/alerts/mine/edit")
        assert 'value="0.3"' in edit.text and "Europe/Warsaw" in edit.text
        changed = browser.post("/alerts/mine", data=FORM | {"csrf": token, "min_score": "0.7"})
        assert changed.status_code == 303
        with connect(db) as con:  # made a Slack digest since (the form's address: checked)
            con.execute("UPDATE subscriptions SET channel = 'slack', url = 'https://h.example/x'")
        back = browser.post("/alerts/mine", data=FORM | {"csrf": token, "min_score": "0.7"})
        assert back.status_code == 303  # back to e-mail: the stored webhook address goes
        assert rows(db, "SELECT channel, url FROM subscriptions") == [("email", "")]
        assert browser.post("/alerts/mine/pause", data={"csrf": token}).status_code == 303
        listing = browser.get("/alerts").text
        assert "paused" in listing and "Resume" in listing
    assert stored(db) == [
        ("mine", ["me@example.org", "Boss@Example.org"], 0.7, True, "local", "local")
    ]
    # the digest flow reads it beside the file's, validated the same way
    subs, skipped = all_subscriptions(alerts, TOPICS_FILE, db)
    assert [s.name for s in subs] == ["flash", "mine"] and skipped == []
    mine = subs[1]
    assert (mine.paused, mine.owner, mine.languages, mine.timezone) == (
        True, "local", ("en", "pl"), "Europe/Warsaw",
    )  # fmt: skip
    outcome = run_digest(db, mine, Settings(), alerts_file=str(alerts), force=True)
    assert outcome.status == "paused"

    with serving(config) as url, httpx.Client(base_url=url) as browser:
        token = csrf_of(browser.get("/alerts").text)
        assert browser.post("/alerts/mine/delete", data={"csrf": token}).status_code == 303
        assert browser.post("/alerts/mine/delete", data={"csrf": token}).status_code == 404
        assert browser.get("/alerts/flash/edit").status_code == 404  # the file's: not here
    assert stored(db) == []


def test_the_unsubscribe_link_of_a_real_digest_works_once_without_signing_in(
    room: tuple[Path, Path],
) -> None:
    db, alerts = room
    handler = Handler()
    users = Access(users={"ana": hash_password("correct horse")})
    with serving(WebConfig(db, (TOPIC,), SECRET, users, alerts_path=alerts)) as url:
        (flash,) = all_subscriptions(alerts, TOPICS_FILE, db)[0]
        team = dataclasses.replace(flash, recipients=("duty@example.org", "ops@example.org"))
        with smtp_server(handler) as (host, port):
            settings = Settings(
                smtp_host=host, smtp_port=port, smtp_security="none", web_url=url,
                web_secret=Secret(SECRET.decode()),
            )  # fmt: skip
            assert run_digest(db, team, settings, alerts_file="a", force=True).status == "sent"
            links = {m.rcpt_tos[0]: m.message["List-Unsubscribe"].strip("<>") for m in
                     handler.messages}  # fmt: skip
            link = links["duty@example.org"]
            assert urlsplit(link).netloc == urlsplit(url).netloc

            # a link scanner's GET changes nothing; it shows the button
            shown = httpx.get(link)
            assert shown.status_code == 200 and "Stop the digests of “flash”" in shown.text
            assert rows(db, "SELECT count(*) FROM unsubscribes") == [(0,)]
            # the mail client's one-click POST (RFC 8058): no login, no cookie, another site
            done = httpx.post(
                link,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "Sec-Fetch-Site": "cross-site"},
            )  # fmt: skip
            assert done.status_code == 200 and "gets no more digests" in done.text
            assert httpx.post(link).status_code == 200  # again: still done, no error
            # every other page still needs signing in
            assert httpx.get(f"{url}/alerts").status_code == 401

            # a token for another subscription, or one edited, changes nothing
            other = unsubscribe_token(SECRET, "other", "ops@example.org")
            forged = other.split(".")[0] + "." + link.rsplit(".", 1)[1]
            for bad in (forged, link.rsplit("/", 1)[1][:-2] + "00", "garbage", "e30.%C3%A9"):
                refused = httpx.post(f"{url}/unsubscribe/{bad}")
                assert refused.status_code == 400 and "not valid" in refused.text
            assert rows(db, "SELECT subscription, recipient, via FROM unsubscribes") == [
                ("flash", "duty@example.org", "link")
            ]

            # the next digest goes to the one still subscribed
            with httpx.Client(base_url=url, auth=("ana", "correct horse")) as browser:
                page = browser.get("/alerts").text
                assert "duty@example.org" in page and "Resubscribe" in page
            handler.messages.clear()
            db_rows = rows(db, "SELECT count(*) FROM digests")
            assert run_digest(db, team, settings, alerts_file="a", force=True).status == "empty"
            assert handler.messages == [] and rows(db, "SELECT count(*) FROM digests") != db_rows
            with httpx.Client(base_url=url, auth=("ana", "correct horse")) as browser:
                token = csrf_of(browser.get("/alerts").text)
                back = browser.post(
                    "/alerts/flash/resubscribe",
                    data={"csrf": token, "recipient": "duty@example.org"},
                )
                assert back.status_code == 303
            assert rows(db, "SELECT count(*) FROM unsubscribes") == [(0,)]
