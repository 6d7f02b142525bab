"""Atom 1.0 (RFC 4287) feeds of stories, for feed readers: one entry per story, its best copy.

Built with ElementTree, so every title and outlet is escaped as XML text; control characters
that XML 1.0 cannot carry are dropped first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from newsmon.warehouse.reading import StoryRow

ATOM = "http://www.w3.org/2005/Atom"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(parent: ET.Element, tag: str, value: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    el.text = _NOT_XML.sub("", value)
    return el


def _stamp(when: datetime | None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def topic_feed(topic: str, stories: Sequence[StoryRow], base_url: str) -> bytes:
    """The newest stories relevant to ``topic`` as an Atom document (UTF-8 bytes)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", f"{base_url}/topics/{topic}.atom")
    _text(feed, "title", f"newsmon: {topic}")
    _text(
        feed,
        "updated",
        _stamp(max((s.published_at for s in stories if s.published_at), default=None)),
    )
    ET.SubElement(
        feed, f"{{{ATOM}}}link", {"rel": "self", "href": f"{base_url}/topics/{topic}.atom"}
    )
    ET.SubElement(
        feed, f"{{{ATOM}}}link", {"rel": "alternate", "href": f"{base_url}/?topic={topic}"}
    )
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "newsmon")
    for story in stories:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", f"urn:newsmon:story:{story.story_id}")
        _text(entry, "title", story.title or "(untitled)")
        _text(entry, "updated", _stamp(story.published_at))
        link = f"{base_url}/articles/{story.article_id}"
        ET.SubElement(entry, f"{{{ATOM}}}link", {"rel": "alternate", "href": link})
        copies = f", and {story.copies - 1} more" if story.copies > 1 else ""
        _text(
            entry,
            "summary",
            f"{story.outlet}{copies}; {story.topic} score {story.score:.2f}",
        )
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


__all__ = ["topic_feed"]
