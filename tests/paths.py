"""Where the tests find the project and the shared data beside it.

The development corpus and the seeds live in ``../shared/`` next to the repo root (never copied
into the project). A clone made elsewhere for a check (``git clone . /tmp/x``) has no
``../shared``: then the shared folder next to the clone's origin is used, or ``$NEWSMON_SHARED``.
Tests that need it fail, never skip, when it cannot be found.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    candidates = [ROOT.parent / "shared"]
    if os.environ.get("NEWSMON_SHARED"):
        candidates.insert(0, Path(os.environ["NEWSMON_SHARED"]))
    try:
        origin = subprocess.run(
            ["git", "-C", str(ROOT), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / "shared")
    for candidate in candidates:
        if (candidate / "corpus").is_dir():
            return candidate
    return candidates[-1]


SHARED = _shared_dir()
CORPUS = SHARED / "corpus"
SEEDS = SHARED / "seeds"


def topics_copy(dest: Path, changes: Mapping[str, str]) -> Path:
    """The shipped config/topics.toml written to ``dest`` with each ``old -> new`` text of
    ``changes`` applied once, its examples folder made absolute so that it loads from there."""
    text = (ROOT / "config" / "topics.toml").read_text(encoding="utf-8")
    baseline = (ROOT / "warehouse" / "baseline").as_posix()
    changes = {'examples = "../warehouse/baseline"': f'examples = "{baseline}"', **changes}
    for old, new in changes.items():
        text = text.replace(old, new, 1)
    dest.write_text(text, encoding="utf-8")
    return dest
