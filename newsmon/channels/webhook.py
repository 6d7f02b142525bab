"""Digests for chat and machines: Slack, Microsoft Teams and generic JSON webhooks.

A subscription with ``channel = "slack" | "teams" | "webhook"`` and ``url = "https://..."``
(the incoming-webhook address the operator made in Slack or Teams, or any receiver) gets the
same selection as an e-mail digest (flows/digest.py keeps the same exactly-once log); this
module only shapes the payload and posts it:

- ``slack``: ``{"text", "blocks"}`` (Block Kit sections, mrkdwn links, ``&<>`` escaped as
  Slack asks);
- ``teams``: a message with one Adaptive Card (1.4) attachment, as Teams' workflows webhooks
  take it;
- ``webhook``: ``{"subscription", "generated_at", "stories": [...], "more"}`` with every field
  as plain data.

Only a 2xx answer counts as delivered; anything else (or no answer within the timeout) raises
:class:`~newsmon.channels.email.SendError` and the digest is retried on the next run. The URL is
a credential (Slack's and Teams' carry a token): errors name its host only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from newsmon.channels.email import SendError
from newsmon.core.records import DigestStory

MAX_ANSWER_BYTES = 64 * 1024


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


def post(url: str, body: dict[str, Any], timeout_s: float) -> None:
    """POST ``body`` as JSON; return only when the receiver answered 2xx (else SendError)."""
    host = urlsplit(url).hostname or "the receiver"
    data = json.dumps(body, ensure_ascii=False).encode()
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            answer = client.post(url, content=data, headers={"Content-Type": "application/json"})
    except httpx.TimeoutException:
        raise SendError("timeout", f"{host} did not answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise SendError("connection", f"cannot post to {host}: {type(exc).__name__}") from None
    if not 200 <= answer.status_code < 300:
        raise SendError("rejected", f"{host} answered HTTP {answer.status_code}")


__all__ = ["payload", "post", "write_json"]
