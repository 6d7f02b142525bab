"""Digests for chat and machines: Slack, Microsoft Teams, Matrix, ntfy and generic webhooks.

A subscription with ``channel = "slack" | "teams" | "matrix" | "ntfy" | "webhook"`` and
``url = "https://..."`` (the incoming-webhook address the operator made in Slack or Teams, a
Matrix room, an ntfy topic, or any receiver) gets the same selection as an e-mail digest
(flows/digest.py keeps the same exactly-once log); this module only shapes the payload and
delivers it:

- ``slack``: ``{"text", "blocks"}`` (Block Kit sections, mrkdwn links, ``&<>`` escaped as
  Slack asks);
- ``teams``: a message with one Adaptive Card (1.4) attachment, as Teams' workflows webhooks
  take it;
- ``matrix``: an ``m.notice`` (plain ``body`` and HTML ``formatted_body``, escaped), PUT to the
  room's ``send/m.room.message/{txn}`` with the access token as a Bearer token. The url is
  ``https://ACCESS_TOKEN@homeserver/!roomid:server``; the transaction id is the digest's id, so
  the homeserver drops a repeat of the same request;
- ``ntfy``: ntfy's JSON publish (``{"topic", "title", "message", "markdown", "click"}``) POSTed
  to the server's root; the url is the topic's, ``https://ntfy.example.org/TOPIC`` (with
  ``user:password@`` for a protected topic);
- ``webhook``: ``{"subscription", "generated_at", "stories": [...], "more"}`` with every field
  as plain data.

Why not Apprise (which Prefect installs): its Slack and Teams plugins post only to the vendors'
own hosts (no self-hosted or test receiver), its result is a bare True / False (no reason for
the delivery log), and the transaction id that makes a Matrix delivery idempotent is not ours
to set there. Each channel here is a few lines of httpx.

Only a 2xx answer counts as delivered; anything else (or no answer within the timeout) raises
:class:`~newsmon.channels.email.SendError` and the digest is retried on the next run. The URL is
a credential (Slack's and Teams' carry a token): errors name its host only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from newsmon.channels.email import SendError
from newsmon.core.records import DigestStory

MAX_ANSWER_BYTES = 64 * 1024
NTFY_MAX_CHARS = 4000  # ntfy keeps a message of up to 4,096 bytes as text


def _md(text: str) -> str:
    """Text for ntfy's Markdown: its link and emphasis characters taken literally."""
    return "".join("\\" + c if c in "\\`*_[]()<>#|" else c for c in text)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _line(story: DigestStory) -> tuple[str, str, str]:
    lead = story.lead
    also = f" (also in {len(story.others)} more)" if story.others else ""
    return lead.title, lead.url, f"{lead.outlet}{also}, {lead.topic} {lead.score:.2f}"


def payload(
    channel: str, subscription: str, stories: Sequence[DigestStory], more: int, now: datetime
) -> dict[str, Any]:
    """The JSON body ``channel`` takes for these stories."""
    heading = (
        f"newsmon: {len(stories)} new stor{'y' if len(stories) == 1 else 'ies'} for {subscription}"
    )
    more_text = f"{more} more not shown" if more else ""
    if channel == "slack":
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": heading[:150]}}
        ]
        for story in stories:
            title, url, meta = _line(story)
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"*<{_slack_escape(url)}|{_slack_escape(title)}>*\n"
                        f"{_slack_escape(meta)}",
                    },
                }
            )
        if more_text:
            blocks.append(
                {"type": "context", "elements": [{"type": "plain_text", "text": more_text}]}
            )
        return {"text": heading, "blocks": blocks[:50]}
    if channel == "teams":
        body: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": heading, "weight": "Bolder", "size": "Medium"}
        ]
        for story in stories:
            title, url, meta = _line(story)
            body.append({"type": "TextBlock", "text": title, "wrap": True, "weight": "Bolder"})
            body.append({"type": "TextBlock", "text": meta, "wrap": True, "isSubtle": True})
            body.append(
                {
                    "type": "ActionSet",
                    "actions": [{"type": "Action.OpenUrl", "title": "Read", "url": url}],
                }
            )
        if more_text:
            body.append({"type": "TextBlock", "text": more_text, "isSubtle": True})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        }
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }
    if channel == "matrix":
        lines = [f"{t} ({m}) {u}" for t, u, m in map(_line, stories)]
        items = "".join(
            f'<li><a href="{escape(u)}">{escape(t)}</a> <em>{escape(m)}</em></li>'
            for t, u, m in map(_line, stories)
        )
        tail = f"<p>{escape(more_text)}</p>" if more_text else ""
        return {
            "msgtype": "m.notice",
            "body": "\n".join([heading, *lines, *([more_text] if more_text else [])]),
            "format": "org.matrix.custom.html",
            "formatted_body": f"<p><strong>{escape(heading)}</strong></p><ul>{items}</ul>{tail}",
        }
    if channel == "ntfy":
        lines = [f"- [{_md(t)}]({u}) {_md(m)}" for t, u, m in map(_line, stories)]
        message = "\n".join([*lines, *([more_text] if more_text else [])])
        return {
            "title": heading,
            "message": message[:NTFY_MAX_CHARS],
            "markdown": True,
            "click": stories[0].lead.url if stories else "",
            "tags": ["newspaper"],
        }
    if channel == "webhook":
        return {
            "subscription": subscription,
            "generated_at": now.isoformat(),
            "stories": [
                {
                    "title": s.lead.title,
                    "url": s.lead.url,
                    "outlet": s.lead.outlet,
                    "topic": s.lead.topic,
                    "score": round(s.lead.score, 3),
                    "published_at": s.lead.published_at.isoformat()
                    if s.lead.published_at
                    else None,
                    "also_in": [{"outlet": o.outlet, "url": o.url} for o in s.others],
                }
                for s in stories
            ],
            "more": more,
        }
    raise ValueError(f"unknown channel {channel!r}")


def write_json(body: dict[str, Any], directory: Path, stem: str) -> Path:
    """A dry run's output: the body that would be posted, as ``stem.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def post(
    url: str, body: dict[str, Any], timeout_s: float, *, channel: str = "webhook", txn: str = ""
) -> None:
    """Deliver ``body`` as JSON the way ``channel`` takes it; return only when the receiver
    answered 2xx (else SendError). ``txn``: the digest's id (Matrix's transaction id)."""
    parts = urlsplit(url)
    host = parts.hostname or "the receiver"
    method, target, headers = "POST", url, {"Content-Type": "application/json"}
    if channel == "matrix":
        room = parts.path.strip("/")
        server = parts.netloc.rpartition("@")[2]
        method = "PUT"
        target = (
            f"{parts.scheme}://{server}/_matrix/client/v3/rooms/{quote(room, safe='')}"
            f"/send/m.room.message/{quote(txn or 'newsmon', safe='')}"
        )
        headers["Authorization"] = f"Bearer {unquote(parts.username or '')}"
    elif channel == "ntfy":
        body = {"topic": parts.path.strip("/"), **body}
        target = f"{parts.scheme}://{parts.netloc}/"
    data = json.dumps(body, ensure_ascii=False).encode()
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            answer = client.request(method, target, content=data, headers=headers)
    except httpx.TimeoutException:
        raise SendError("timeout", f"{host} did not answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise SendError("connection", f"cannot post to {host}: {type(exc).__name__}") from None
    if not 200 <= answer.status_code < 300:
        raise SendError("rejected", f"{host} answered HTTP {answer.status_code}")


__all__ = ["payload", "post", "write_json"]
