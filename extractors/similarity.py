"""Similarity of a text to a topic's example articles (the baseline set for ``eu_nato_defence``).

A topic may name a directory of example articles (``examples`` in ``config/topics.toml``). Each
example becomes a bag-of-words vector: case- and accent-folded words of three letters or more,
minus English, French and German function words, weighted ``1 + log(tf)`` and L2-normalised.
Their normalised sum (the centroid) is the topic's :class:`Profile`; a document's similarity is
the cosine between its own vector and the centroid, from 0 (no shared vocabulary) to 1.

Why a centroid cosine and not TF-IDF or MinHash: three examples give no document frequencies to
speak of, and MinHash measures near-duplication, not shared subject matter. On the labelled
corpus the centroid cosine separates relevant from irrelevant items well enough to be one piece
of evidence among the keyword and entity scores (see docs/topics.md).

The examples directory holds text files and a ``manifest.toml`` with one ``[[articles]]`` table
per file: ``file``, ``title`` and optional ``chrome`` (regular expressions, multi-line mode, for
page furniture to remove). Other keys are kept in :attr:`Example.meta` for the caller.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsmon.core.errors import ConfigError
from newsmon.extractors.query import fold, folded_words_of

# English, French and German function words (split at run time: SIM905 would explode the list).
_STOPWORD_TEXT = """
the and for that with this from have has had was were are not but its his her their they them
will would said says say also been more than into over after about which who what when where
there other some out new one two can may could should our your all any did just like only most
many such then very because while before being both each few how off own same too under until
upon why year years told since still against between during through those these himself
les des une est pas que qui dans par pour sur avec plus son ses aux ont été sont mais comme
elle ils nous vous leur cette entre sans sous tout fait avoir être dont selon aussi après
der die das und den dem des ein eine einer eines nicht mit von für auf ist sich sie auch als
bei nach wie aus noch nur wird werden wurde oder aber hat haben zum zur über vor dass sind
"""
_STOPWORDS = frozenset(fold(w) for w in _STOPWORD_TEXT.split())


def _is_content(word: str) -> bool:
    return len(word) >= 3 and word not in _STOPWORDS and not word.isdigit()


def vector(folded_words: Iterable[str]) -> dict[str, float]:
    """The L2-normalised ``1 + log(tf)`` vector of already folded words (function words dropped)."""
    counts = Counter(folded_words)
    weights = {w: 1.0 + math.log(n) for w, n in counts.items() if _is_content(w)}
    return _normalised(weights)


def text_vector(text: str) -> dict[str, float]:
    """:func:`vector` of a raw text."""
    return vector(folded_words_of(text))


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(x * x for x in weights.values()))
    return {w: x / norm for w, x in weights.items()} if norm else {}


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two normalised vectors (iterates over the smaller one)."""
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(w, 0.0) for w, x in a.items())


@dataclass(frozen=True)
class Example:
    """One example article of a topic."""

    file: str
    title: str
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """The centroid of a topic's examples; :meth:`similarity` scores a document against it."""

    centroid: Mapping[str, float]
    size: int

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> Profile:
        total: Counter[str] = Counter()
        for t in texts:
            total.update(text_vector(t))
        return cls(_normalised(total), len(texts))

    def similarity(self, doc_vector: Mapping[str, float]) -> float:
        return cosine(doc_vector, self.centroid)


def clean_text(raw: str, chrome: Sequence[str]) -> str:
    """Remove the chrome patterns, then tidy no-break spaces, blank lines and trailing spaces."""
    text = raw.replace("\r\n", "\n").replace("\u00a0", " ")
    for pattern in chrome:
        text = re.sub(pattern, "", text, flags=re.MULTILINE)
    lines = [line.strip() for line in text.split("\n")]
    return "\n\n".join(line for line in lines if line)


def load_examples(directory: Path) -> list[Example]:
    """Read an examples directory (``manifest.toml`` plus text files). Raises ConfigError."""
    manifest = Path(directory) / "manifest.toml"
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(
            manifest, "", f"cannot read the examples manifest ({e.strerror})", "check the path"
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(manifest, "", f"not valid TOML ({e})", "fix the TOML syntax") from e
    out: list[Example] = []
    for i, entry in enumerate(data.get("articles", [])):
        key = f"articles[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ConfigError(manifest, key, "needs a file name", 'set file = "name.txt"')
        if not isinstance(entry.get("title"), str) or not entry["title"].strip():
            raise ConfigError(manifest, f"{key}.title", "needs a title", 'set title = "..."')
        path = manifest.parent / entry["file"]
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(
                manifest, f"{key}.file", f"{path} cannot be read ({e.strerror})", "restore it"
            ) from e
        chrome = entry.get("chrome", [])
        if not isinstance(chrome, list) or not all(isinstance(c, str) for c in chrome):
            raise ConfigError(
                manifest, f"{key}.chrome", "must be a list of regular expressions", "fix it"
            )
        meta = {k: v for k, v in entry.items() if k not in ("file", "title", "chrome")}
        out.append(Example(entry["file"], entry["title"], clean_text(raw, chrome), meta))
    if not out:
        raise ConfigError(manifest, "articles", "lists no articles", "add [[articles]] tables")
    return out


__all__ = [
    "Example",
    "Profile",
    "clean_text",
    "cosine",
    "load_examples",
    "text_vector",
    "vector",
]
