"""What the reading room's tests share: the app served by uvicorn on 127.0.0.1 in a thread,
the sample warehouse's hostile title, and a page's form token."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from newsmon.web.app import WebConfig, create_app
from tests.smtpserver import free_port

TOPIC = "eu_nato_defence"
HOSTILE = '<script>alert("x")</script> & <b>bold</b> "quoted"'
SECRET = b"test-secret"


@contextmanager
def serving(config: WebConfig) -> Iterator[str]:
    """The app on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def csrf_of(html: str) -> str:
    """The form token a page carries."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)
