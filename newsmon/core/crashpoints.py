"""A test hook: stop the process at a named point so a crash test can SIGKILL it there.

``NEWSMON_TEST_PAUSE_AT=<point>`` makes the process, on reaching ``pause_point(<point>)``, write
``newsmon: paused at <point>`` to stderr and sleep (up to ``MAX_PAUSE_S``), waiting to be killed.
Unset (always, outside tests), ``pause_point`` does nothing. Points: ``extract`` (a batch's
pages fetched, not extracted yet), ``load`` (inside a batch's load transaction, rows written,
not committed), ``rescore`` (inside a rescore's swap transaction, not committed), ``index`` (a
full-text index built in its transaction, not committed). Polling, fetching and sending are
paused by slow servers instead, with no hook.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "NEWSMON_TEST_PAUSE_AT"
MAX_PAUSE_S = 120.0

__all__ = ["ENV", "pause_point"]


def pause_point(name: str) -> None:
    """Pause here when ``$NEWSMON_TEST_PAUSE_AT`` names this point (see the module docstring)."""
    if os.environ.get(ENV) != name:
        return
    sys.stderr.write(f"newsmon: paused at {name}\n")
    sys.stderr.flush()
    time.sleep(MAX_PAUSE_S)
