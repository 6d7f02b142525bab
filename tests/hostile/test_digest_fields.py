"""Markup and CR/LF in every field a digest shows: title, outlet, link, extract, the reasons it
matched, a failing feed's name and reason. The subject stays one header line (no injected Bcc),
the HTML part holds no live markup and no ``javascript:`` link, and a line of one ``.`` in the
text is dot-stuffed on the wire (it would end the SMTP DATA early)."""

from __future__ import annotations

from datetime import UTC, datetime

from newsmon.channels.email import build_message, render
from newsmon.core.alerts import Subscription
from newsmon.core.records import DigestArticle, DigestStory, FailingFeed

EVIL = '\r\nBcc: spy@example.org\r\n<script>alert(1)</script><img src=x onerror="x()">'


def test_every_field_a_digest_shows_is_inert() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    lead = DigestArticle(
        article_id="a1",
        title="NATO" + EVIL,
        url="javascript:alert(document.cookie)",
        outlet="Outlet" + EVIL,
        published_at=now,
        first_seen_at=now,
        score=0.9,
        topic="eu_nato_defence",
        extract="First line\r\n.\r\nQUIT\r\n" + EVIL,
        entities=("NATO" + EVIL,),
        terms=("<b>term</b>",),
    )
    other = DigestArticle(
        "a2", "Copy" + EVIL, "https://ok.example/a2", "Other" + EVIL, None, now, 0.8,
        "eu_nato_defence", "", (), (),
    )  # fmt: skip
    failing = FailingFeed("Feed" + EVIL, "https://f.example/rss", "http_5xx" + EVIL, 9, None)
    subscription = Subscription("flash", ("duty@example.org",), ("eu_nato_defence",))
    rendered = render(
        subscription, [DigestStory(lead, (other,))], more=2, failing_feeds=[failing],
        next_at=None, generated_at=now, alerts_file="alerts.toml",
    )  # fmt: skip
    message = build_message(
        rendered, sender="newsmon <n@example.org>", recipients=["duty@example.org"],
        digest_id="d1", now=now,
    )  # fmt: skip
    wire = message.as_bytes()
    head = wire.split(b"\n\n", 1)[0]
    assert message["Bcc"] is None
    assert not [line for line in head.split(b"\n") if line.lower().startswith(b"bcc:")]
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert "<script>" not in rendered.html and 'onerror="' not in rendered.html
    assert "javascript:" not in rendered.html
    # the SMTP layer dot-stuffs; a lone "." line in the text would otherwise end DATA
    from smtplib import quotedata

    assert b"\r\n.\r\n" not in quotedata(message.as_string()).encode()[:-5]


def test_with_the_reading_rooms_address_each_story_and_the_rest_link_back() -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    lead = DigestArticle(
        "a1" + EVIL, "Title", "https://ok.example/a1", "Outlet", None, now, 0.9,
        "eu_nato_defence", "", (), (),
    )  # fmt: skip
    subscription = Subscription("flash", ("duty@example.org",), ("eu_nato_defence",))

    def rendered(web_url: str) -> tuple[str, str]:
        out = render(
            subscription, [DigestStory(lead, ())], more=4, failing_feeds=[], next_at=None,
            generated_at=now, alerts_file="alerts.toml", web_url=web_url,
        )  # fmt: skip
        return out.text, out.html

    text, html = rendered("https://newsmon.example.org")
    assert "Relevant or not? https://newsmon.example.org/articles/a1" in text
    assert "4 more not shown: https://newsmon.example.org/?topic=eu_nato_defence&order=best" in text
    assert 'href="https://newsmon.example.org/?topic=eu_nato_defence&amp;order=best"' in html
    assert "<script>" not in html and 'onerror="' not in html  # the id is escaped too
    text, html = rendered("")
    assert "/articles/" not in text and "/articles/" not in html
