"""Atom 1.0 (RFC 4287) feeds of stories, for feed readers: one entry per story, its best copy.

Built with ElementTree, so every title and outlet is escaped as XML text; control characters
that XML 1.0 cannot carry are dropped first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from newsmon.warehouse.reading import StoryRow

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(parent: ET.Element, tag: str, value: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    el.text = _NOT_XML.sub("", value)
    return el


def _stamp(when: datetime | None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def topic_feed(topic: str, stories: Sequence[StoryRow], base_url: str) -> bytes:
    """The newest stories relevant to ``topic`` as an Atom document (UTF-8 bytes)."""
    return stories_feed(
        f"/topics/{topic}.atom", f"newsmon: {topic}", f"/?topic={topic}", stories, base_url
    )


def stories_feed(
    path: str, title: str, alternate: str, stories: Sequence[StoryRow], base_url: str
) -> bytes:
    """Stories as an Atom document served at ``path`` (a topic's, a subscription's, a saved
    search's), one entry per story linking to its best copy's page."""
    entries = [
        Entry(
            f"urn:newsmon:story:{story.story_id}",
            story.title or "(untitled)",
            f"{base_url}/articles/{story.article_id}",
            story.published_at,
            f"{story.outlet}{f', and {story.copies - 1} more' if story.copies > 1 else ''}; "
            f"{story.topic} score {story.score:.2f}",
        )
        for story in stories
    ]
    return feed(path, title, alternate, entries, base_url)


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    link: str
    updated: datetime | None
    summary: str


def feed(path: str, title: str, alternate: str, entries: Sequence[Entry], base_url: str) -> bytes:
    """An Atom 1.0 document of ``entries`` (UTF-8 bytes)."""
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    _text(root, "id", f"{base_url}{path}")
    _text(root, "title", title)
    _text(root, "updated", _stamp(max((e.updated for e in entries if e.updated), default=None)))
    ET.SubElement(root, f"{{{ATOM}}}link", {"rel": "self", "href": f"{base_url}{path}"})
    ET.SubElement(root, f"{{{ATOM}}}link", {"rel": "alternate", "href": f"{base_url}{alternate}"})
    author = ET.SubElement(root, f"{{{ATOM}}}author")
    _text(author, "name", "newsmon")
    for e in entries:
        entry = ET.SubElement(root, f"{{{ATOM}}}entry")
        _text(entry, "id", e.id)
        _text(entry, "title", e.title)
        _text(entry, "updated", _stamp(e.updated))
        ET.SubElement(entry, f"{{{ATOM}}}link", {"rel": "alternate", "href": e.link})
        _text(entry, "summary", e.summary)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


__all__ = ["MEDIA_TYPE", "Entry", "feed", "stories_feed", "topic_feed"]
