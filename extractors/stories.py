"""Stories: near-duplicate articles (syndicated copies, lightly edited re-posts) grouped together.

Each article gets a :class:`Signature`: MinHash sketches (128 values) of its set of word
3-shingles (case- and accent-folded words, as the topic matcher sees them):

- ``body``: of the extracted text, when the page gave one of at least ``MIN_BODY_SHINGLES``;
- ``head``: of the title and the feed summary (or, with no summary, the first
  ``HEAD_LEAD_WORDS`` words of the text), when it has at least ``MIN_HEAD_SHINGLES``.

Two articles are the same story when, within ``window`` of each other, their bodies are
near-duplicates (estimated Jaccard >= ``body_jaccard``, or the smaller one's shingles are mostly
in the larger one: containment >= ``body_containment``, for trimmed copies), or, when either has
no body (a page that failed, a summary-only entry), their heads are (Jaccard >= ``head_jaccard``).

Why MinHash over word 3-shingles and not trafilatura's SimHash: on the syndication test corpus
(tests/storycorpus.py: 136 articles from 51 stories with different outlets' page chrome and edits)
copies of one story had an exact shingle Jaccard of 0.62 or more and different stories 0.063 at
most, so a threshold has a wide margin; trafilatura's 64-bit bag-of-words SimHash gave copies
0.81 and different same-subject stories up to 0.80, no usable margin (docs/stories.md).

The MinHash is computed here with numpy (multiply-shift hashing of 64-bit shingle hashes, fixed
constants derived from blake2b), so signatures are stable across processes and versions and can
be stored: :data:`SCHEME` names the construction; a stored signature of another scheme is
recomputed. Clustering (:func:`cluster`) is greedy and incremental: articles are taken in time
order, each joins the story of its most similar earlier article (new or stored) if that one is a
near-duplicate, else founds a story named after itself. Stories are never merged afterwards, so a
story id, once given, is stable.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from newsmon.extractors.query import folded_words_of

SCHEME = 1  # bump when the shingling or hashing below changes: stored signatures are recomputed
NUM_PERM = 128
SHINGLE_WORDS = 3
HEAD_LEAD_WORDS = 60
MIN_BODY_SHINGLES = 40
MIN_HEAD_SHINGLES = 8

U64 = np.uint64
Hashes = npt.NDArray[np.uint64]
Values = npt.NDArray[np.uint32]


def _constant(name: str, i: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"newsmon-{name}-{i}".encode(), digest_size=8).digest())


# multiply-shift hash family: h_i(x) = (a_i * x + b_i) mod 2^64, top 32 bits; a_i odd
_A: Hashes = np.array([_constant("minhash-a", i) | 1 for i in range(NUM_PERM)], dtype=U64)
_B: Hashes = np.array([_constant("minhash-b", i) for i in range(NUM_PERM)], dtype=U64)
_MIX: Hashes = np.array([_constant("shingle", i) | 1 for i in range(SHINGLE_WORDS)], dtype=U64)


@dataclass(frozen=True)
class StoryParams:
    """When two articles are the same story (see the module docstring)."""

    window: timedelta = timedelta(days=7)
    body_jaccard: float = 0.30
    body_containment: float = 0.60
    head_jaccard: float = 0.50


@dataclass(frozen=True, eq=False)
class MinHash:
    """A MinHash sketch of a shingle set: ``NUM_PERM`` uint32 values and the set's size."""

    values: Values
    size: int

    def to_bytes(self) -> bytes:
        return self.values.astype("<u4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, size: int) -> MinHash:
        return cls(np.frombuffer(data, dtype="<u4").astype(np.uint32), size)

    def jaccard(self, other: MinHash) -> float:  # as _agreement, for one pair
        return float(np.count_nonzero(self.values == other.values)) / NUM_PERM


@dataclass(frozen=True)
class Signature:
    body: MinHash | None
    head: MinHash | None


def _splitmix(x: Hashes) -> Hashes:
    x = x ^ (x >> U64(30))
    x = x * U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> U64(27))
    x = x * U64(0x94D049BB133111EB)
    return x ^ (x >> U64(31))


class _WordHashes(dict[str, int]):
    """crc32 of each word, computed on first sight: a text's words are mostly ones seen before,
    and a lookup costs half of encoding and hashing the word (0.2 against 0.5 ms for 3,600
    words). Cleared when it reaches ``limit`` words, so a long-running process stays bounded."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, word: str) -> int:
        if len(self) >= self.limit:
            self.clear()
        value = self[word] = zlib.crc32(word.encode())
        return value


_WORD_HASHES = _WordHashes(limit=500_000)


def shingle_hashes(words: Sequence[str]) -> Hashes:
    """The distinct 64-bit hashes of the word ``SHINGLE_WORDS``-grams of ``words``."""
    if len(words) < SHINGLE_WORDS:
        return np.empty(0, dtype=U64)
    h = np.fromiter(map(_WORD_HASHES.__getitem__, words), dtype=U64, count=len(words))
    n = len(words) - SHINGLE_WORDS + 1
    combined = np.zeros(n, dtype=U64)
    for k in range(SHINGLE_WORDS):
        combined = _splitmix(combined ^ (h[k : k + n] * _MIX[k]))
    return np.unique(combined)


def minhash(hashes: Hashes) -> MinHash:
    """The MinHash sketch of a set of shingle hashes (at least one): for each permutation, the
    least ``(a * h + b) >> 32`` (mod 2**64). The shift keeps order, so it is applied to the
    minimum, not to every product; the products are made in place."""
    products = np.multiply.outer(hashes, _A)
    products += _B
    least: Hashes = products.min(axis=0) >> U64(32)
    return MinHash(least.astype(np.uint32), int(hashes.size))


def _sketch(words: Sequence[str], minimum: int) -> MinHash | None:
    hashes = shingle_hashes(words)
    return minhash(hashes) if hashes.size >= minimum else None


def signature(title: str | None, summary: str | None, text: str | None) -> Signature:
    """An article's signature: body from the text, head from the title and summary (or lead)."""
    body_words = folded_words_of(text) if text else []
    body = _sketch(body_words, MIN_BODY_SHINGLES)
    lead = summary if summary else " ".join(body_words[:HEAD_LEAD_WORDS])
    head = _sketch(folded_words_of(f"{title or ''}\n{lead}"), MIN_HEAD_SHINGLES)
    return Signature(body, head)


@dataclass(frozen=True)
class Similarity:
    kind: str  # body | head
    jaccard: float
    containment: float  # of the smaller set in the larger, estimated


def _containment(jaccard: float, a: int, b: int) -> float:
    """|A ∩ B| / min(|A|, |B|), from the Jaccard estimate and the two set sizes."""
    if jaccard <= 0:
        return 0.0
    return min(1.0, jaccard / (1 + jaccard) * (a + b) / min(a, b))


def similarity(a: Signature, b: Signature) -> Similarity | None:
    """Bodies when both have one, else heads when both have one, else None."""
    if a.body is not None and b.body is not None:
        j = a.body.jaccard(b.body)
        return Similarity("body", j, _containment(j, a.body.size, b.body.size))
    if a.head is not None and b.head is not None:
        j = a.head.jaccard(b.head)
        return Similarity("head", j, _containment(j, a.head.size, b.head.size))
    return None


def is_same_story(sim: Similarity | None, params: StoryParams) -> bool:
    if sim is None:
        return False
    if sim.kind == "body":
        return sim.jaccard >= params.body_jaccard or sim.containment >= params.body_containment
    return sim.jaccard >= params.head_jaccard


# --- clustering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryItem:
    """An article to cluster (``story_id`` None) or already clustered."""

    article_id: str
    at: datetime  # published, else first seen
    signature: Signature
    story_id: str | None = None


@dataclass(frozen=True)
class Assignment:
    article_id: str
    story_id: str
    matched: str | None  # the article it was found to duplicate; None: it founded the story
    similarity: float | None  # the Jaccard estimate of that match


class _Pool:
    """Signatures of the articles seen so far, as matrices, for one vectorised comparison."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.ids: list[str] = []
        self.stories: list[str] = []
        self.at = np.zeros(capacity, dtype=np.int64)
        self.body = np.zeros((capacity, NUM_PERM), dtype=np.uint32)
        self.body_size = np.zeros(capacity, dtype=np.int64)
        self.head = np.zeros((capacity, NUM_PERM), dtype=np.uint32)
        self.head_size = np.zeros(capacity, dtype=np.int64)

    def add(self, item: StoryItem, story_id: str) -> None:
        i = self.n
        self.ids.append(item.article_id)
        self.stories.append(story_id)
        self.at[i] = _seconds(item.at)
        sig = item.signature
        if sig.body is not None:
            self.body[i], self.body_size[i] = sig.body.values, sig.body.size
        if sig.head is not None:
            self.head[i], self.head_size[i] = sig.head.values, sig.head.size
        self.n += 1

    def best_match(self, item: StoryItem, params: StoryParams) -> tuple[int, float] | None:
        """Index and Jaccard of the most similar same-story article in the pool, if any.

        Sketches are compared only on the rows that can match (near in time, with the part
        compared): an article with a body compares heads only with the few that have none."""
        n = self.n
        if n == 0:
            return None
        near = np.abs(self.at[:n] - _seconds(item.at)) <= int(params.window.total_seconds())
        sig = item.signature
        jaccard = np.zeros(n)
        same = np.zeros(n, dtype=bool)
        has_body = self.body_size[:n] > 0
        has_head = self.head_size[:n] > 0
        if sig.body is not None:
            rows = np.flatnonzero(near & has_body)
            j = _agreement(self.body[rows], sig.body.values)
            sizes = self.body_size[rows]
            smaller = np.maximum(np.minimum(sizes, sig.body.size), 1)
            contained = np.minimum(1.0, j / (1 + j) * (sizes + sig.body.size) / smaller)
            same[rows] = (j >= params.body_jaccard) | (contained >= params.body_containment)
            jaccard[rows] = j
            head_rows = near & ~has_body & has_head
        else:
            head_rows = near & has_head
        if sig.head is not None:
            rows = np.flatnonzero(head_rows)
            j = _agreement(self.head[rows], sig.head.values)
            same[rows] |= j >= params.head_jaccard
            jaccard[rows] = j
        if not same.any():
            return None
        candidates = np.where(same, jaccard, -1.0)
        best = int(np.argmax(candidates))
        return best, float(candidates[best])


def _agreement(sketches: npt.NDArray[np.uint32], values: Values) -> npt.NDArray[np.float64]:
    """The share of each row of ``sketches`` equal to ``values``, position by position (the
    Jaccard estimate). Counted in the narrowest type that holds NUM_PERM (uint8): half the time
    of summing the booleans."""
    equal = np.equal(sketches, values).view(np.uint8)
    counts: npt.NDArray[np.unsignedinteger[Any]] = equal.sum(axis=1, dtype=_COUNT)
    return counts / NUM_PERM


_COUNT = np.uint8 if NUM_PERM < 256 else np.uint16  # a count of equal positions never wraps


def _seconds(at: datetime) -> int:
    return int(at.timestamp())


def cluster(
    new: Sequence[StoryItem], known: Sequence[StoryItem], params: StoryParams
) -> list[Assignment]:
    """Assign a story to each of ``new`` (in time order), against ``known`` (already in stories)
    and the new articles before it. Ties go to the earlier article; ids break time ties."""
    pool = _Pool(len(new) + len(known))
    for item in known:
        if item.story_id is not None:
            pool.add(item, item.story_id)
    out: list[Assignment] = []
    for item in sorted(new, key=lambda i: (i.at, i.article_id)):
        match = pool.best_match(item, params)
        if match is None:
            assignment = Assignment(item.article_id, item.article_id, None, None)
        else:
            index, jaccard = match
            assignment = Assignment(
                item.article_id, pool.stories[index], pool.ids[index], round(jaccard, 4)
            )
        pool.add(item, assignment.story_id)
        out.append(assignment)
    return out


__all__ = [
    "NUM_PERM",
    "SCHEME",
    "Assignment",
    "MinHash",
    "Signature",
    "Similarity",
    "StoryItem",
    "StoryParams",
    "cluster",
    "is_same_story",
    "minhash",
    "shingle_hashes",
    "signature",
    "similarity",
]
