"""Digests to Slack, Teams and a generic webhook: each delivered to a real receiver on
127.0.0.1 with the channel's payload, through the same exactly-once log as e-mail: a receiver
that fails (HTTP 500, or no answer) gets nothing recorded as sent, and once it recovers it gets
the digest exactly once; a run after that sends nothing. A crash after the receiver took the
digest and before it answered leaves it `sending`: posted once more, then never again."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest

from newsmon.core.alerts import load_alerts
from newsmon.core.settings import Settings
from newsmon.flows.digest import run_digest
from tests.helpers import copy_warehouse, rows
from tests.sample import ingest_sample


class Receiver:
    """Records every JSON body posted; answers ``status`` (or never, while ``stall`` is set)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        self.status = 200
        self.stall = threading.Event()  # set: take the body, then hold the answer back
        self.stalled = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if owner.status < 300:
                    owner.bodies.append((self.path, json.loads(body)))
                    auth = self.headers.get("Authorization", "")
                    owner.requests.append((self.command, self.path, auth))
                if owner.stall.is_set():
                    owner.stalled.set()
                    while owner.stall.is_set():
                        time.sleep(0.05)
                    return
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST  # Matrix's send is a PUT

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def ingested(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingest_sample(tmp_path_factory.mktemp("channels"))


@pytest.fixture
def db(ingested: Path, tmp_path: Path) -> Path:
    """A copy of it for one test (each records its own digests)."""
    return copy_warehouse(ingested, tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _subscriptions(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(
        "".join(
            f'[[subscriptions]]\nname = "{c}-room"\nchannel = "{c}"\n'
            f'url = "{url}/hooks/{c}/T0/B0"\n'
            'topics = ["eu_nato_defence"]\nmin_score = 0.5\nfrequency = "immediate"\n'
            "max_items = 3\n"
            for c in ("slack", "teams", "webhook")
        ),
        encoding="utf-8",
    )
    return path


def test_each_channel_gets_its_payload_once_after_a_failing_receiver_recovers(
    db: Path, tmp_path: Path, receiver: Receiver
) -> None:
    alerts = _subscriptions(tmp_path, receiver.url)
    subs = load_alerts(alerts, ["eu_nato_defence"])
    settings = Settings.from_env({"NEWSMON_SMTP_TIMEOUT": "5"})

    def deliver() -> list[str]:
        return [run_digest(db, s, settings, alerts_file=str(alerts)).status for s in subs]

    receiver.status = 500
    assert deliver() == ["failed"] * 3
    assert receiver.bodies == []
    assert rows(db, "SELECT DISTINCT status, reason FROM digests") == [("failed", "rejected")]

    receiver.status = 200
    assert deliver() == ["sent"] * 3
    assert deliver() == ["empty"] * 3  # nothing twice
    by_path = dict(receiver.bodies)
    assert len(receiver.bodies) == 3

    slack = by_path["/hooks/slack/T0/B0"]
    assert slack["text"].startswith("newsmon: 3 new stories for slack-room")
    links = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    assert len(links) == 3 and all(t.startswith("*<http") for t in links)
    assert any(b["type"] == "context" for b in slack["blocks"])  # "N more not shown"

    teams = by_path["/hooks/teams/T0/B0"]
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    actions = [b for b in card["content"]["body"] if b["type"] == "ActionSet"]
    assert len(actions) == 3

    hook = by_path["/hooks/webhook/T0/B0"]
    assert hook["subscription"] == "webhook-room" and len(hook["stories"]) == 3
    assert hook["more"] > 0 and all(s["url"].startswith("http") for s in hook["stories"])
    titles = {t for (t,) in rows(db, "SELECT title FROM articles")}
    assert {s["title"] for s in hook["stories"]} <= titles

    logged = rows(db, "SELECT DISTINCT recipients FROM digests WHERE status = 'sent'")
    assert sorted(r[0][0] for r in logged) == [
        "slack:127.0.0.1",
        "teams:127.0.0.1",
        "webhook:127.0.0.1",
    ]  # fmt: skip  (the webhook's address is a credential: its host only)


def test_matrix_and_ntfy_get_their_payloads_once_after_a_failing_receiver_recovers(
    db: Path, tmp_path: Path, receiver: Receiver
) -> None:
    host = receiver.url.removeprefix("http://")
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(
        f'[[subscriptions]]\nname = "matrix-room"\nchannel = "matrix"\n'
        f'url = "http://syt_secret-token@{host}/!ops:example.org"\n'
        'topics = ["eu_nato_defence"]\nmin_score = 0.5\nfrequency = "immediate"\nmax_items = 2\n'
        f'[[subscriptions]]\nname = "phones"\nchannel = "ntfy"\n'
        f'url = "{receiver.url}/defence-alerts"\n'
        'topics = ["eu_nato_defence"]\nmin_score = 0.5\nfrequency = "immediate"\nmax_items = 2\n',
        encoding="utf-8",
    )
    subs = load_alerts(alerts, ["eu_nato_defence"])
    settings = Settings.from_env({"NEWSMON_SMTP_TIMEOUT": "5"})
    with duckdb.connect(str(db)) as con:  # the strongest story's title, hostile
        con.execute(
            "UPDATE articles SET title = '<script>x</script> [link](javascript:y) *b*' "
            "WHERE article_id = (SELECT arg_max(article_id, score) FROM article_matches "
            "JOIN articles USING (article_id) WHERE relevant AND NOT is_baseline)"
        )

    def deliver() -> list[str]:
        return [run_digest(db, s, settings, alerts_file=str(alerts)).status for s in subs]

    receiver.status = 503
    assert deliver() == ["failed"] * 2 and receiver.bodies == []
    receiver.status = 200
    assert deliver() == ["sent"] * 2
    assert deliver() == ["empty"] * 2  # nothing twice
    (matrix_call, ntfy_call) = receiver.requests
    (matrix_path, matrix), (ntfy_path, ntfy) = receiver.bodies
    sent = dict(rows(db, "SELECT subscription, digest_id FROM digests WHERE status = 'sent'"))

    # Matrix: a PUT of an m.notice to the room, the token as Bearer, the digest id as txn id
    assert matrix_call[0] == "PUT" and matrix_call[2] == "Bearer syt_secret-token"
    assert matrix_path == (
        f"/_matrix/client/v3/rooms/%21ops%3Aexample.org/send/m.room.message/{sent['matrix-room']}"
    )
    assert matrix["msgtype"] == "m.notice" and matrix["format"] == "org.matrix.custom.html"
    assert matrix["formatted_body"].count("<li><a href=") == 2
    assert "<script" not in matrix["formatted_body"]  # titles escaped
    assert "&lt;script&gt;x&lt;/script&gt;" in matrix["formatted_body"]
    assert "more not shown" in matrix["body"]

    # ntfy: the JSON publish at the server's root, the topic from the url
    assert ntfy_call[:2] == ("POST", "/") and ntfy_path == "/"
    assert ntfy["topic"] == "defence-alerts" and ntfy["markdown"] is True
    assert ntfy["title"].startswith("newsmon: 2 new stories for phones")
    assert ntfy["message"].count("\n- [") == 1 and ntfy["click"].startswith("http")
    assert r"\[link\]\(javascript:y\) \*b\*" in ntfy["message"]  # taken literally
    # the token is a credential: the log has the host only
    logged = rows(db, "SELECT DISTINCT recipients FROM digests WHERE status = 'sent'")
    assert sorted(r[0][0] for r in logged) == ["matrix:127.0.0.1", "ntfy:127.0.0.1"]


def test_a_reading_room_user_s_webhook_obeys_the_feeds_address_policy(
    db: Path, tmp_path: Path, receiver: Receiver
) -> None:
    """An operator's alerts.toml may name a receiver on this machine; a subscription a user made
    in the reading room may not (else any user could make newsmon post to internal services):
    at send time too, whatever the form let through."""
    (hook,) = [s for s in load_alerts(_subscriptions(tmp_path, receiver.url), ["eu_nato_defence"])
               if s.channel == "webhook"]  # fmt: skip
    strict = Settings.from_env({"NEWSMON_ALLOW_PRIVATE_NETWORKS": "false"})
    users = dataclasses.replace(hook, owner="ana")
    refused = run_digest(db, users, strict, alerts_file="a")
    assert (refused.status, refused.reason) == ("failed", "blocked_address")
    assert "127.0.0.1 is a loopback address" in (refused.error or "") and receiver.bodies == []
    assert run_digest(db, hook, strict, alerts_file="a").status == "sent"  # the operator's


def test_a_dry_run_writes_the_payload_it_would_post_and_records_nothing(
    db: Path, tmp_path: Path, receiver: Receiver
) -> None:
    alerts = _subscriptions(tmp_path, receiver.url)
    teams = [s for s in load_alerts(alerts, ["eu_nato_defence"]) if s.channel == "teams"]
    out = tmp_path / "out"
    outcome = run_digest(db, teams[0], Settings.from_env({}), alerts_file=str(alerts),
                         dry_run_dir=out)  # fmt: skip
    assert outcome.status == "dry_run" and outcome.path and outcome.path.endswith(".json")
    body = json.loads(Path(outcome.path).read_text(encoding="utf-8"))
    assert body["type"] == "message" and body["attachments"]
    assert receiver.bodies == [] and rows(db, "SELECT count(*) FROM digests") == [(0,)]


def test_a_receiver_that_does_not_answer_is_a_failure_kept_for_the_next_run(
    db: Path, tmp_path: Path
) -> None:
    import socket

    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        alerts = _subscriptions(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}")
        [sub, *_] = load_alerts(alerts, ["eu_nato_defence"])
        settings = Settings.from_env({"NEWSMON_SMTP_TIMEOUT": "1"})
        outcome = run_digest(db, sub, settings, alerts_file=str(alerts))
    finally:
        silent.close()
    assert (outcome.status, outcome.reason) == ("failed", "timeout")
    assert "127.0.0.1" in (outcome.error or "") and "/hooks/" not in (outcome.error or "")


def test_a_crash_after_the_receiver_took_the_digest_resends_it_once(
    db: Path, tmp_path: Path, receiver: Receiver
) -> None:
    """SIGKILL while the receiver holds back its answer: the digest stays `sending` and the
    next run posts it once more (at least once, as for e-mail: docs/alerts.md); then nothing."""
    from prefect.settings import PREFECT_API_URL

    alerts = _subscriptions(tmp_path, receiver.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env |= {"NEWSMON_ALERTS": str(alerts), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    command = [sys.executable, "-m", "newsmon.cli", "digest", "--db", str(db),
               "--subscription", "webhook-room"]  # fmt: skip
    receiver.stall.set()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert receiver.stalled.wait(120), "the digest never reached the receiver"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        time.sleep(1)  # the supervised child dies a moment after its parent: before the answer
    finally:
        receiver.stall.clear()
    assert rows(db, "SELECT status FROM digests") == [("sending",)]
    assert len(receiver.bodies) == 1  # it had the message; the answer never came back
    for expected in (2, 2):  # the next run posts it once more; the one after, nothing
        again = subprocess.run(command, env=env, capture_output=True, timeout=180, check=False)
        assert again.returncode == 0, again.stderr[-2000:]
        assert len(receiver.bodies) == expected
    assert rows(db, "SELECT count(*) FILTER (WHERE status = 'sent') FROM digests") == [(1,)]
