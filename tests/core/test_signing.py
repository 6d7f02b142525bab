"""The warehouse's signing key and the unsubscribe tokens it signs."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from newsmon.core.signing import (
    read_unsubscribe_token,
    secret_for,
    secret_path,
    unsubscribe_token,
)


def test_processes_starting_at_once_on_a_new_warehouse_share_one_key(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    start, keys = threading.Barrier(16), []

    def make() -> None:
        start.wait()
        keys.append(secret_for(db, None))

    threads = [threading.Thread(target=make) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 16 and len(set(keys)) == 1
    assert secret_path(db).read_bytes() == keys[0]
    assert stat.S_IMODE(secret_path(db).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["w.duckdb.web-secret"]  # no drafts left
    assert secret_for(db, "configured") == b"configured"


def test_an_unsubscribe_token_names_one_subscription_and_address() -> None:
    key = b"k" * 32
    token = unsubscribe_token(key, "desk", "a@example.org")
    assert read_unsubscribe_token(key, token) == ("desk", "a@example.org")
    assert read_unsubscribe_token(b"another key", token) is None
    # the payload of another subscription with this token's signature: refused
    other = unsubscribe_token(key, "flash", "a@example.org")
    forged = other.split(".")[0] + "." + token.split(".")[1]
    assert read_unsubscribe_token(key, forged) is None
    for junk in ("", ".", "x.y", "!!!.abc", token + "0", token.split(".")[0]):
        assert read_unsubscribe_token(key, junk) is None
