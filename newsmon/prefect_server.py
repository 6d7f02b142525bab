"""Prefect's temporary server, started at the beginning of a one-off command rather than at its
first flow run.

Without a Prefect API (``PREFECT_API_URL``, a profile, ``prefect.toml``), a flow starts a
temporary local server at its first API call and waits for it: the process imports the server's
code (about 3 s here), then the server boots in a subprocess (about 5 s), and only then does the
flow begin. ``newsmon run`` and the other commands that run a flow start that same server as
their first step instead, with the same command line and environment Prefect would give it, and
point the flow at it once it answers. It boots on the second core while newsmon imports its
modules and validates its configuration, and the command never imports the server's code.

Flow runs against it send no heartbeats: they exist so that a long-lived server notices a
crashed flow run, and this server ends with the command; each run's end would otherwise wait up
to a second for the heartbeat thread.

Prefect's settings decide, as they would have: with an API configured, or ephemeral mode
switched off, nothing is started here. Deployments and ``newsmon serve`` run against a real
server and never come here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

# what prefect.server.api.server.SubprocessASGIServer adds to the server's environment
_SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
_PORT_IN_USE = 3  # uvicorn's exit status when it cannot bind


class TemporaryServer:
    """A context manager: starts the server on enter (when Prefect would need one), points
    Prefect at it in :meth:`ready`, stops it on exit. Call :meth:`ready` before the first flow.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._env: dict[str, str] = {}
        self._timeout_s = 60.0
        self._port = 0
        self._stack = ExitStack()
        self._pointed = False

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api"

    def __enter__(self) -> TemporaryServer:
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            return self  # Prefect has an API, or must not start one: leave it to Prefect
        self._env = {
            **os.environ,
            **_SERVER_ENV,
            **settings.to_environment_variables(exclude_unset=True),
        }
        self._timeout_s = float(settings.server.ephemeral.startup_timeout_seconds)
        self._spawn()
        return self

    def ready(self) -> None:
        """Wait until the server answers, then send this process's flows to it.

        If it does not start in time, it is stopped and Prefect is left to start its own (and
        to report why that fails, in its words).
        """
        if self._process is None or self._pointed:
            return
        if not self._wait_healthy():
            self._stop()
            return
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )

        # Heartbeats let a long-lived server notice a crashed flow run; this one lives only as
        # long as the command, and a flow run's end waits for the heartbeat thread (up to 1 s).
        updates = {PREFECT_API_URL: self.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        self._stack.enter_context(temporary_settings(updates=updates))
        self._pointed = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pointed:
            # logs and events still queued for this server go out before it stops (Prefect's
            # own temporary server stops at exit, after these workers have drained)
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5, at_exit=False)
            EventsWorker.drain_all(timeout=5, at_exit=False)
        self._stack.close()
        self._stop()

    # -- internals --------------------------------------------------------------------------

    def _spawn(self) -> None:
        import prefect

        self._port = _free_port()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(prefect.__file__).parent.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self._port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=self._env,
            stdin=subprocess.DEVNULL,
        )

    def _wait_healthy(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                if self._process.returncode != _PORT_IN_USE:
                    return False
                self._spawn()  # someone took the port between choosing and binding it
            try:
                with opener.open(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        return False

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


__all__ = ["TemporaryServer"]
