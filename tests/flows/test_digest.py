"""E-mail digests against a real SMTP server on 127.0.0.1: content, grouping, escaping,
exactly-once delivery across failures, schedules, dry runs, the lock, the flow and the CLI."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.core.alerts import Subscription, is_due, load_alerts, next_due
from newsmon.core.errors import ConfigError
from newsmon.core.settings import DEFAULT_CONFIG_DIR, Secret, Settings
from newsmon.core.signing import read_unsubscribe_token, secret_for
from newsmon.extractors.pipeline import ArticleRecord, filter_articles
from newsmon.extractors.topics import load_topics
from newsmon.flows.digest import DigestOutcome, run_digest, subscription_lock
from newsmon.warehouse import loads, subscriptions
from newsmon.warehouse.baseline import ensure_baseline
from newsmon.warehouse.store import connect
from tests.helpers import immediate_alerts, record, rows
from tests.httpserver import closed_port
from tests.smtpserver import Handler, smtp_server

TOPICS = load_topics(DEFAULT_CONFIG_DIR / "topics.toml")
HOSTILE = "<script>alert('x')</script> NATO allies & <b>EU</b> agree air defence plan"

STORIES = [
    # (n, outlet, title, text)
    (1, "Defence Wire", "NATO allies agree to raise defence spending",
     "Allies at the summit in Brussels pledged more for the eastern flank and air defence."),
    (2, "Europe Desk", "NATO allies agree to raise defence spending",
     "Allies at the summit in Brussels pledged more for the eastern flank and air defence."),
    (3, "Security Brief", "EU approves first SAFE defence loans for joint purchases",
     "The European Commission signed loans for air defence and ammunition under SAFE."),
    (4, "Hostile Times", HOSTILE,
     "NATO and the European Union agreed a joint air defence plan for the Baltic states."),
    (5, "Cat Weekly", "Cat show draws record crowds",
     "Cats of every breed were judged in Riga on Sunday."),
]  # fmt: skip


def records(items: list[tuple[int, str, str, str]]) -> list[ArticleRecord]:
    return filter_articles(
        [record(n, text, title=title, site_name=outlet) for n, outlet, title, text in items],
        TOPICS,
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    db = tmp_path / "w.duckdb"
    ensure_baseline(db, TOPICS)
    with connect(db) as con:
        loads.load_articles(con, records(STORIES))
    return db


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def server(handler: Handler) -> Iterator[tuple[str, int]]:
    with smtp_server(handler) as address:
        yield address


SUB = Subscription(
    name="desk",
    recipients=("a@example.org", "b@example.org"),
    topics=("eu_nato_defence",),
    frequency="daily",
    at=time(7, 30),
    timezone="Europe/Brussels",
)


def settings_for(address: tuple[str, int], **changes: object) -> Settings:
    host, port = address
    base = Settings(smtp_host=host, smtp_port=port, smtp_security="none")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def send(db: Path, address: tuple[str, int]) -> DigestOutcome:
    return run_digest(db, SUB, settings_for(address), alerts_file="alerts.toml", force=True)


def part(msg: EmailMessage, kind: str) -> str:
    body = msg.get_body((kind,))
    assert isinstance(body, EmailMessage), kind
    return str(body.get_content())


def digest_rows(db: Path) -> list[tuple[str, str | None]]:
    with connect(db, read_only=True) as con:
        return con.execute("SELECT status, reason FROM digests ORDER BY started_at").fetchall()


# --- content ----------------------------------------------------------------------------------


def test_digest_content(warehouse: Path, server: tuple[str, int], handler: Handler) -> None:
    outcome = send(warehouse, server)
    assert outcome.status == "sent"
    # one message per recipient (each may carry its own unsubscribe link), one log row each
    first, second = handler.messages
    assert (first.rcpt_tos, second.rcpt_tos) == (["a@example.org"], ["b@example.org"])
    assert rows(warehouse, "SELECT recipient, status FROM digests ORDER BY recipient") == [
        ("a@example.org", "sent"), ("b@example.org", "sent"),
    ]  # fmt: skip
    msg = first.message
    assert msg["To"] == "a@example.org"
    assert msg["List-Id"] == '"newsmon desk" <desk.localhost>'
    assert msg["List-Unsubscribe"] is None  # no reading room to honour it (NEWSMON_WEB_URL)
    assert msg["Subject"].startswith("3 stories: ")
    assert "[newsmon desk]" in msg["Subject"]
    assert msg["X-Newsmon-Digest"] == outcome.digest_id
    text = part(msg, "plain")
    html = part(msg, "html")
    # every relevant story once; the copy from a second outlet is listed under the first (the
    # HTML's <title> repeats the subject, which names the best-scored story)
    for body in (text, html.split("<body", 1)[1]):
        assert body.count("NATO allies agree to raise defence spending") == 1
        assert body.count("EU approves first SAFE defence loans") == 1
        assert "Cat show" not in body
        assert "Europe Desk" in body and "Defence Wire" in body
        assert "Also reported by" in body
        assert "NATO chief says EU defence push" not in body  # the baseline is not news
    # hostile markup from a feed arrives as text
    assert "<script>" not in html and "<b>EU</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert HOSTILE in text
    # why it matched, and the footer
    assert "Why:" in text and "NATO" in text
    assert "Next digest:" in text and "daily at 07:30 (Europe/Brussels)" in text
    assert 'edit "desk" in alerts.toml' in text
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert 'src="http' not in html  # no remote images


def test_failing_feeds_are_in_the_footer(
    warehouse: Path, server: tuple[str, int], handler: Handler
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=3)
    with connect(warehouse) as con:
        con.execute(
            "INSERT INTO feeds (feed_id, name, url, added_at, error_streak, last_reason, active)"
            " VALUES ('f9', 'Broken Feed', 'https://broken.example/rss', ?, 12, 'http_status',"
            " true)",
            [long_ago],
        )
    send(warehouse, server)
    text = part(handler.messages[0].message, "plain")
    assert "Broken Feed: http_status, 12 failed polls, never succeeded" in text


def test_max_items_and_languages(
    warehouse: Path, server: tuple[str, int], handler: Handler
) -> None:
    sub = dataclasses.replace(SUB, max_items=1)
    outcome = run_digest(warehouse, sub, settings_for(server), alerts_file="a", force=True)
    assert (outcome.stories, outcome.status) == (1, "sent")
    assert "2 more not shown" in part(handler.messages[0].message, "html")
    # the two not shown count as handled: the next digest has nothing
    assert (
        run_digest(warehouse, sub, settings_for(server), alerts_file="a", force=True).status
        == "empty"
    )
    french = dataclasses.replace(SUB, name="fr-only", languages=("fr",))
    assert (
        run_digest(warehouse, french, settings_for(server), alerts_file="a", force=True).status
        == "empty"
    )


# --- exactly once -----------------------------------------------------------------------------


def test_second_run_sends_only_what_is_new(
    warehouse: Path, server: tuple[str, int], handler: Handler
) -> None:
    assert send(warehouse, server).status == "sent"
    assert send(warehouse, server).status == "empty"
    assert len(handler.messages) == 2  # one each
    new = [(6, "Defence Wire", "Poland orders more air defence from European industry",
            "Warsaw signed for Patriot batteries to protect NATO's eastern flank.")]  # fmt: skip
    with connect(warehouse) as con:
        loads.load_articles(con, records(new))
    assert send(warehouse, server).status == "sent"
    assert len(handler.messages) == 4
    text = part(handler.messages[2].message, "plain")
    assert "Poland orders more air defence" in text
    assert "raise defence spending" not in text and text.count("\n1. ") == 1


@pytest.mark.parametrize(
    ("mode", "reason"), [("refuse", "smtp_refused"), ("drop", "smtp_disconnected")]
)
def test_a_failed_send_marks_nothing_and_the_next_run_delivers(
    warehouse: Path, mode: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = Handler(mode=mode)
    with smtp_server(bad) as address:
        outcome = send(warehouse, address)
    assert (outcome.status, outcome.reason) == ("failed", reason)
    assert digest_rows(warehouse) == [("failed", reason)] * 2  # one per recipient
    good = Handler()
    with smtp_server(good) as address:
        assert send(warehouse, address).status == "sent"
        assert send(warehouse, address).status == "empty"
    received, _ = good.messages
    text = part(received.message, "plain")
    assert text.count("NATO allies agree to raise defence spending") == 1
    assert "EU approves first SAFE defence loans" in text


def test_an_unreachable_server_is_a_failure_with_a_reason(warehouse: Path) -> None:
    outcome = send(warehouse, ("127.0.0.1", closed_port()))
    assert outcome.status == "failed"
    assert outcome.reason == "smtp_unreachable"
    assert "cannot reach 127.0.0.1:" in (outcome.error or "")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_failure_never_shows_the_password(warehouse: Path, handler: Handler) -> None:
    with smtp_server(handler, password="right-password") as address:
        ok = run_digest(
            warehouse, SUB, settings_for(address, smtp_user="newsmon"), alerts_file="a",
            force=True, password=Secret("right-password"),
        )  # fmt: skip
        assert ok.status == "sent"
        with connect(warehouse) as con:
            loads.load_articles(con, records([(7, "X", "NATO boosts Baltic air policing",
                                               "Allied jets deploy to Estonia.")]))  # fmt: skip
        bad = run_digest(
            warehouse, SUB, settings_for(address, smtp_user="newsmon"), alerts_file="a",
            force=True, password=Secret("hunter2-wrong"),
        )  # fmt: skip
    assert (bad.status, bad.reason) == ("failed", "smtp_auth")
    with connect(warehouse, read_only=True) as con:
        stored = str(con.execute("SELECT * FROM digests").fetchall())
    assert "hunter2" not in stored and "hunter2" not in str(bad)


def test_each_recipient_gets_its_own_unsubscribe_link_and_leaving_stops_only_them(
    warehouse: Path, server: tuple[str, int], handler: Handler
) -> None:
    web = settings_for(server, web_url="https://newsmon.example.org")
    assert run_digest(warehouse, SUB, web, alerts_file="a", force=True).status == "sent"
    key = secret_for(warehouse, None)  # made beside the warehouse by the first digest
    links = {}
    for received in handler.messages:
        msg = received.message
        (to,) = received.rcpt_tos
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = msg["List-Unsubscribe"].strip("<>")
        assert link.startswith("https://newsmon.example.org/unsubscribe/")
        assert read_unsubscribe_token(key, link.rsplit("/", 1)[1]) == ("desk", to)
        assert f"To unsubscribe {to}: {link}" in part(msg, "plain")
        links[to] = link
    assert links["a@example.org"] != links["b@example.org"]
    with connect(warehouse) as con:
        assert subscriptions.unsubscribe(con, "desk", "A@Example.org", "link")
        assert not subscriptions.unsubscribe(con, "desk", "a@example.org", "link")  # once
        loads.load_articles(con, records([(8, "X", "NATO boosts Baltic air policing",
                                           "Allied jets deploy to Estonia.")]))  # fmt: skip
    assert run_digest(warehouse, SUB, web, alerts_file="a", force=True).status == "sent"
    assert [m.rcpt_tos for m in handler.messages[2:]] == [["b@example.org"]]
    with connect(warehouse) as con:
        subscriptions.unsubscribe(con, "desk", "b@example.org", "link")
    gone = run_digest(warehouse, SUB, web, alerts_file="a", force=True)
    assert (gone.status, gone.reason) == ("empty", "everyone unsubscribed")


def test_each_address_has_one_log_in_any_case_and_old_digests_count_for_whom_they_listed(
    warehouse: Path, server: tuple[str, int], handler: Handler
) -> None:
    assert send(warehouse, server).status == "sent"
    # a digest from before schema version 7 went to everyone at once: recipient NULL
    with connect(warehouse) as con:
        con.execute("UPDATE digests SET recipient = NULL WHERE recipient = 'a@example.org'")
    handler.messages.clear()
    later = dataclasses.replace(SUB, recipients=("A@Example.org", "c@example.org", "a@example.org"))
    outcome = run_digest(warehouse, later, settings_for(server), alerts_file="a", force=True)
    # A@ and a@ are one address, which the old digest listed: nothing new for it; c@ joined
    # later and gets its own first digest (the backfill), not the old digest's
    (received,) = handler.messages
    assert received.rcpt_tos == ["c@example.org"] and outcome.stories == 3
    logged = rows(warehouse, "SELECT recipient, status FROM digests ORDER BY started_at, recipient")
    assert logged == [
        ("b@example.org", "sent"), (None, "sent"), ("A@Example.org", "empty"),
        ("c@example.org", "sent"),
    ]  # fmt: skip


# --- schedule, dry run, lock --------------------------------------------------------------------


def test_schedules_are_pure_functions() -> None:
    brussels = dataclasses.replace(SUB, frequency="daily", at=time(7, 30))
    t = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 07:00 in Brussels (CET)
    assert next_due(brussels, t) == datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
    assert is_due(brussels, None, t)  # never run: due
    assert not is_due(brussels, datetime(2026, 11, 23, 7, 0, tzinfo=UTC), t)  # before 07:30
    assert is_due(brussels, datetime(2026, 11, 23, 7, 0, tzinfo=UTC), t + timedelta(hours=1))
    # summer time: 07:30 in Brussels is 05:30 UTC
    assert next_due(brussels, datetime(2026, 7, 1, 6, 0, tzinfo=UTC)) == datetime(
        2026, 7, 2, 5, 30, tzinfo=UTC
    )
    weekly = dataclasses.replace(SUB, frequency="weekly", day=0, at=time(8, 0), timezone="UTC")
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert next_due(weekly, wednesday) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert not is_due(weekly, datetime(2026, 11, 23, 8, 0, tzinfo=UTC), wednesday)
    hourly = dataclasses.replace(SUB, frequency="hourly")
    assert is_due(hourly, wednesday - timedelta(minutes=61), wednesday)
    assert not is_due(hourly, wednesday + timedelta(minutes=1), wednesday + timedelta(minutes=30))
    immediate = dataclasses.replace(SUB, frequency="immediate")
    assert is_due(immediate, wednesday, wednesday) and next_due(immediate, wednesday) is None


def test_not_due_sends_nothing(warehouse: Path, server: tuple[str, int], handler: Handler) -> None:
    now = datetime.now(UTC)
    first = run_digest(warehouse, SUB, settings_for(server), alerts_file="a", now=now)
    assert first.status == "sent"
    again = run_digest(warehouse, SUB, settings_for(server), alerts_file="a", now=now)
    assert again.status == "not_due" and len(handler.messages) == 2


def test_dry_run_writes_eml_and_records_nothing(warehouse: Path, tmp_path: Path) -> None:
    outcome = run_digest(
        warehouse, SUB, Settings(), alerts_file="a", force=True, dry_run_dir=tmp_path / "out"
    )
    assert outcome.status == "dry_run" and len(outcome.paths) == 2
    assert [Path(p).name.split("-2")[0] for p in outcome.paths] == [
        "desk-a@example.org", "desk-b@example.org",
    ]  # fmt: skip
    msg = message_from_bytes(Path(outcome.paths[1]).read_bytes(), policy=policy.default)
    assert msg["To"] == "b@example.org"
    assert msg["Subject"].startswith("3 stories: ")
    assert msg.is_multipart()
    assert digest_rows(warehouse) == []


def test_two_digests_of_one_subscription_never_run_at_once(
    warehouse: Path, server: tuple[str, int]
) -> None:
    with subscription_lock(warehouse, SUB.name) as held:
        assert held
        outcome = send(warehouse, server)
    assert outcome.status == "busy"
    assert send(warehouse, server).status == "sent"


# --- config, flow and CLI ---------------------------------------------------------------------


def test_shipped_alerts_file_is_valid() -> None:
    subs = load_alerts(DEFAULT_CONFIG_DIR / "alerts.toml", TOPICS.names)
    assert [s.name for s in subs] == ["defence-daily", "defence-flash"]


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ('name = "x"\nrecipients = ["not-an-address"]\ntopics = ["eu_nato_defence"]',
         "subscriptions[0] (x).recipients", "is not an e-mail address"),
        ('name = "x"\nrecipients = ["a@b.org"]\ntopics = ["eu_nato_defense"]',
         "subscriptions[0] (x).topics", "unknown topic 'eu_nato_defense'"),
        ('name = "x"\nrecipients = ["a@b.org"]\ntopics = ["eu_nato_defence"]\n'
         'timezone = "Mars/Base"',
         "subscriptions[0] (x).timezone", "unknown time zone"),
        ('name = "x"\nrecipients = ["a@b.org"]\ntopics = ["eu_nato_defence"]\nfrequency = "often"',
         "subscriptions[0] (x).frequency", "must be one of"),
        ('name = "x"\nrecipients = ["a@b.org"]\ntopics = ["eu_nato_defence"]\nat = "7.30pm"',
         "subscriptions[0] (x).at", "is not a time"),
        ('name = "x"\nrecipient = ["a@b.org"]', "subscriptions[0].recipient", "unknown key"),
        ('name = "x"\nchannel = "fax"\ntopics = ["eu_nato_defence"]',
         "subscriptions[0] (x).channel", "must be one of"),
        ('name = "x"\nchannel = "slack"\ntopics = ["eu_nato_defence"]',
         "subscriptions[0] (x).url", "http(s) address of the webhook"),
        ('name = "x"\nchannel = "teams"\nurl = "file:///etc/passwd"\ntopics = ["eu_nato_defence"]',
         "subscriptions[0] (x).url", "http(s) address of the webhook"),
        ('name = "x"\nrecipients = ["a@b.org"]\nurl = "https://h/x"\ntopics = ["eu_nato_defence"]',
         "subscriptions[0] (x).url", "an e-mail digest has no url"),
    ],
)  # fmt: skip
def test_alerts_errors_name_file_and_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(f"[[subscriptions]]\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_alerts(path, TOPICS.names)
    assert (info.value.source, info.value.key) == (str(path), key)
    assert problem in info.value.problem and info.value.fix


def test_cli_digest_runs_the_flow(
    warehouse: Path, server: tuple[str, int], handler: Handler, tmp_path: Path,
    prefect_server: None, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(
        '[[subscriptions]]\nname = "desk"\nrecipients = ["a@example.org"]\n'
        'topics = ["eu_nato_defence"]\nfrequency = "immediate"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("NEWSMON_SMTP_HOST", server[0])
    monkeypatch.setenv("NEWSMON_SMTP_PORT", str(server[1]))
    monkeypatch.setenv("NEWSMON_SMTP_SECURITY", "none")
    args = ["digest", "--db", str(warehouse), "--alerts", str(alerts)]
    dry = CliRunner().invoke(cli, [*args, "--dry-run", str(tmp_path / "eml")], prog_name="newsmon")
    assert dry.exit_code == 0, dry.output
    assert "desk: dry_run, 3 stories (4 articles) -> " in dry.output
    assert list((tmp_path / "eml").glob("desk-*.eml")) and not handler.messages
    sent = CliRunner().invoke(cli, args, prog_name="newsmon")
    assert sent.exit_code == 0, sent.output
    assert "desk: sent, 3 stories (4 articles)" in sent.output
    again = CliRunner().invoke(cli, args, prog_name="newsmon")
    assert "desk: nothing new" in again.output and len(handler.messages) == 1
    monkeypatch.setenv("NEWSMON_SMTP_PORT", str(closed_port()))
    with connect(warehouse) as con:
        loads.load_articles(con, records([(8, "X", "NATO boosts Baltic air policing",
                                           "Allied jets deploy to Estonia.")]))  # fmt: skip
    with caplog_at_error() as records_seen:
        failed = CliRunner().invoke(cli, args, prog_name="newsmon")
    assert failed.exit_code == 1
    assert "desk: FAILED (smtp_unreachable)" in failed.output
    assert any("digest desk failed (smtp_unreachable)" in r for r in records_seen)


class caplog_at_error:  # used like a function, hence the name
    """Collect the messages of ERROR records from the root and Prefect loggers."""

    def __enter__(self) -> list[str]:
        self.handler = _Collect(logging.ERROR)
        for name in ("", "prefect"):
            logging.getLogger(name).addHandler(self.handler)
        return self.handler.seen

    def __exit__(self, *exc: object) -> None:
        for name in ("", "prefect"):
            logging.getLogger(name).removeHandler(self.handler)


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


@pytest.mark.usefixtures("prefect_server")
def test_an_ingest_serving_an_immediate_subscription_sends_its_digest_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21: a new item waited 16 minutes for the duty officer's inbox. With an immediate
    subscription, serve's ingest caps every feed's interval (poll_ceiling_s) and sends the due
    digests as soon as it stored relevant articles, instead of on the digest's own clock."""
    from newsmon.flows.ingest import ingest
    from tests.httpserver import LoopbackHTTPServer
    from tests.sample import serve_sample, write_feeds_toml
    from tests.smtpserver import smtp_server

    alerts = immediate_alerts(tmp_path / "alerts.toml")
    handler = Handler()
    with LoopbackHTTPServer() as http, smtp_server(handler) as (host, port):
        feeds = write_feeds_toml(tmp_path / "feeds.toml", serve_sample(http))
        for key, value in {
            "NEWSMON_SMTP_HOST": host,
            "NEWSMON_SMTP_PORT": str(port),
            "NEWSMON_SMTP_SECURITY": "none",
            "NEWSMON_WORKERS": "1",
        }.items():
            monkeypatch.setenv(key, value)
        db = tmp_path / "w.duckdb"
        summary = ingest(
            db=str(db), feeds_file=str(feeds), only_due=True, poll_ceiling_s=120.0,
            alerts_file=str(alerts),
        )  # fmt: skip
        assert summary.relevant
        assert len(handler.messages) == 1  # sent by the ingest, before it returned
        text = str(handler.messages[0].message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        assert "Germany orders further air-defence batteries" in text
        with connect(db, read_only=True) as con:
            waits = con.execute(
                "SELECT max(next_poll_at - last_polled_at), count(*) FROM feeds "
                "WHERE last_status = 'ok' AND schedule_reason IN ('rate', 'overflow')"
            ).fetchone()  # (a feed that asked for a TTL keeps it)
        assert waits is not None and waits[1] >= 2, waits
        assert waits[0] <= timedelta(seconds=132)  # 2 minutes and the jitter
