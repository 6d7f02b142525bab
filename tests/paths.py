"""Where the tests find the project and the shared data beside it.

The development corpus and the seeds live in ``../shared/`` next to the repo root (never copied
into the project). A clone made elsewhere for a check (``git clone . /tmp/x``) has no
``../shared``: then the shared folder next to the clone's origin is used, or ``$NEWSMON_SHARED``.
Tests that need it fail, never skip, when it cannot be found.
"""

from __future__ import annotations

import os
import subprocess
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
