"""Editing the feed list: add, remove, OPML import and export.

``config/feeds.toml`` stays the one source of truth and stays the file a person wrote: edits go
through tomlkit, which keeps comments, order and formatting (rewriting it with a plain TOML
serialiser would drop every comment). Every change is validated by :func:`load_feeds` before the
file is replaced, atomically, so a failed edit leaves the file as it was.

OPML is what every feed reader imports and exports: ``<outline type="rss" text=... xmlUrl=...>``
elements, nested in category outlines. Import takes every outline with an ``xmlUrl``; the names
of the enclosing outlines (and a ``category`` attribute) become tags. Export writes OPML 2.0.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import tomlkit

from newsmon.core.errors import ConfigError
from newsmon.core.settings import FeedConfig, load_feeds


@dataclass(frozen=True)
class AddResult:
    added: tuple[FeedConfig, ...]
    skipped: tuple[tuple[FeedConfig, str], ...]  # (feed, why): already listed, by url or name


# --------------------------------------------------------------------------- OPML


def parse_opml(path: Path) -> list[FeedConfig]:
    """The feeds of an OPML file; raises ConfigError naming the file when it is not OPML."""
    try:
        root = ET.parse(path).getroot()
    except OSError as e:
        raise ConfigError(path, "", f"cannot be read ({e.strerror})", "check the path") from None
    except ET.ParseError as e:
        raise ConfigError(path, "", f"not valid XML ({e})", "export the OPML again") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise ConfigError(path, "", "not an OPML file (no <opml><body>)", "export it as OPML")
    feeds: list[FeedConfig] = []
    seen: set[str] = set()

    def walk(node: ET.Element, tags: tuple[str, ...]) -> None:
        for outline in node.findall("outline"):
            label = (outline.get("title") or outline.get("text") or "").strip()
            url = (outline.get("xmlUrl") or "").strip()
            if url:
                extra = tuple(
                    t.strip().strip("/")
                    for t in (outline.get("category") or "").split(",")
                    if t.strip().strip("/")
                )
                if url not in seen:
                    seen.add(url)
                    language = (outline.get("language") or "").strip().lower() or None
                    feeds.append(
                        FeedConfig(
                            name=label or url,
                            url=url,
                            tags=tuple(dict.fromkeys(t.lower() for t in (*tags, *extra))),
                            language=language if language and language[:2].isalpha() else None,
                        )
                    )
            walk(outline, (*tags, label) if label and not url else tags)

    walk(body, ())
    return feeds


def to_opml(feeds: Sequence[FeedConfig], title: str = "newsmon feeds") -> str:
    """OPML 2.0 for ``feeds`` (tags as the ``category`` attribute)."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC))
    body = ET.SubElement(root, "body")
    for f in feeds:
        attrs = {"type": "rss", "text": f.name, "title": f.name, "xmlUrl": f.url}
        if f.tags:
            attrs["category"] = ",".join(f.tags)
        if f.language:
            attrs["language"] = f.language
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------- feeds.toml


def add_feeds(path: Path, feeds: Sequence[FeedConfig]) -> AddResult:
    """Append ``feeds`` to the feeds file, skipping those whose URL or name is already there."""
    current = load_feeds(path)
    urls = {f.url for f in current}
    names = {f.name for f in current}
    doc = _read(path)
    table = doc.setdefault("feeds", tomlkit.aot())
    added: list[FeedConfig] = []
    skipped: list[tuple[FeedConfig, str]] = []
    for f in feeds:
        if f.url in urls:
            skipped.append((f, "url already listed"))
            continue
        if f.name in names:
            skipped.append((f, "name already used"))
            continue
        urls.add(f.url)
        names.add(f.name)
        entry = tomlkit.table()
        entry["name"] = f.name
        entry["url"] = f.url
        if f.tags:
            entry["tags"] = list(f.tags)
        if f.language:
            entry["language"] = f.language
        if f.poll_interval_minutes:
            entry["poll_interval_minutes"] = f.poll_interval_minutes
        table.append(entry)
        added.append(f)
    if added:
        _replace(path, tomlkit.dumps(doc))
    return AddResult(tuple(added), tuple(skipped))


def remove_feed(path: Path, name_or_url: str) -> FeedConfig:
    """Remove the feed with this name or URL; ConfigError if there is none or it is the last."""
    current = load_feeds(path)
    match = [i for i, f in enumerate(current) if name_or_url in (f.name, f.url)]
    if not match:
        names = ", ".join(f.name for f in current[:8])
        raise ConfigError(path, "feeds", f"no feed named {name_or_url!r}", f"use one of: {names}")
    if len(current) == 1:
        raise ConfigError(path, "feeds", "cannot remove the last feed", "add another one first")
    doc = _read(path)
    entries = doc["feeds"]
    del entries[match[0]]
    _replace(path, tomlkit.dumps(doc))
    return current[match[0]]


def _read(path: Path) -> tomlkit.TOMLDocument:
    return tomlkit.parse(path.read_text(encoding="utf-8"))


def _replace(path: Path, text: str) -> None:
    """Validate the new text as a feeds file, then swap it in atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".feeds-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            load_feeds(Path(tmp))  # the original stays untouched if the result is not valid
        except ConfigError as e:
            raise ConfigError(path, e.key, e.problem, e.fix) from None
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["AddResult", "add_feeds", "parse_opml", "remove_feed", "to_opml"]
