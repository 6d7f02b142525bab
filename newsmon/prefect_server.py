"""Prefect's temporary server, started at the beginning of a one-off command rather than at its
first flow run.

Without a Prefect API (``PREFECT_API_URL``, a profile, ``prefect.toml``), a flow starts a
temporary local server at its first API call and waits for it: the process imports the server's
code (about 3 s here), then the server boots in a subprocess (about 5 s), and only then does the
flow begin. ``newsmon run`` and the other commands that run a flow start that same server (the
same command line) as their first step instead, before they even import Prefect, and point the
flow at it once it answers. It boots on the second core while newsmon imports its modules and
validates its configuration, and the command never imports the server's code. Started this
early, the server resolves its settings itself, from the same environment, profile and
``prefect.toml`` as the command: what Prefect would have passed it.

Flow runs against it send no heartbeats: they exist so that a long-lived server notices a
crashed flow run, and this server ends with the command; each run's end would otherwise wait up
to a second for the heartbeat thread.

Prefect's settings decide, as they would have: with an API configured, or ephemeral mode
switched off, nothing is started (or, when only a profile or ``prefect.toml`` says so, the early
server is stopped as soon as Prefect's settings are read, and the flow goes where they say).
Deployments and ``newsmon serve`` run against a real server and never come here.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from newsmon.core.paths import DEFAULT_CONFIG_DIR

# Prefect settings that keep a command's Prefect, and its temporary server, offline and quiet:
# no telemetry, no shutdown tracebacks, a generous start-up timeout, our logging config.
QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "PREFECT_LOGGING_SETTINGS_PATH": str(DEFAULT_CONFIG_DIR / "prefect-logging.yml"),
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def apply_quiet_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set :data:`QUIET_DEFAULTS` where the environment has no value (any value there wins).
    Prefect reads its settings at import: call this first."""
    for key, value in QUIET_DEFAULTS.items():
        environ.setdefault(key, value)


# what prefect.server.api.server.SubprocessASGIServer adds to the server's environment
_SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
# What newsmon's temporary server leaves out (a value in the environment wins): registering
# Prefect's block types, which first imports every installed Prefect integration (prefect-dask
# brings dask and distributed: 0.8-1.5 s of the server's start-up, on the run's critical path).
# A server that lives for one command, behind flows that use no blocks, does not need them.
_LEAN_SERVER_DEFAULTS = {
    "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
    "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",  # it would import them to hash
}
_PORT_IN_USE = 3  # uvicorn's exit status when it cannot bind

# On Linux the server goes through this launcher, which asks the kernel to send it SIGTERM when
# the command dies (prctl PR_SET_PDEATHSIG, kept across exec): a command killed by a cron
# timeout or the OOM killer does not leave its server behind. (Prefect's own temporary server
# is stopped at exit only.)
_LAUNCHER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the command died before the prctl
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


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
        """Whether the server is running (after :meth:`ready`: whether flows use it)."""
        return self._process is not None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api"

    def __enter__(self) -> TemporaryServer:
        if os.environ.get("PREFECT_API_URL") or _off(
            os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE")
        ):
            return self
        if "prefect" in sys.modules:
            # this process may have changed Prefect's settings: give the server what they say
            from prefect.settings import get_current_settings

            settings = get_current_settings()
            if not _wants_temporary_server(settings):
                return self
            self._env = {
                **_LEAN_SERVER_DEFAULTS,
                **os.environ,
                **_SERVER_ENV,
                **settings.to_environment_variables(exclude_unset=True),
            }
        else:
            # Start before Prefect is even imported (1.3 s). The server resolves its settings
            # from the same environment, profile and prefect.toml as this process; ready()
            # checks that they do not name an API after all.
            self._env = {**_LEAN_SERVER_DEFAULTS, **os.environ, **_SERVER_ENV}
        self._spawn()
        return self

    def ready(self) -> None:
        """Wait until the server answers, then send this process's flows to it.

        If Prefect's settings name an API after all (a profile, ``prefect.toml``), or the server
        does not start in time, it is stopped and Prefect is left to proceed as usual (and to
        report, in its words, why its own server fails to start).
        """
        if self._process is None or self._pointed:
            return
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        self._timeout_s = float(settings.server.ephemeral.startup_timeout_seconds)
        if not _wants_temporary_server(settings) or not self._wait_healthy():
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
        spec = importlib.util.find_spec("prefect")  # where it is, without importing it (1 s)
        assert spec is not None and spec.origin is not None, "prefect is a dependency"
        self._port = _free_port()
        # the kernel ties the death signal to the thread that starts the child
        launcher = (
            ["-c", _LAUNCHER, str(os.getpid())]
            if sys.platform == "linux" and threading.current_thread() is threading.main_thread()
            else []
        )
        self._process = subprocess.Popen(
            [
                sys.executable,
                *launcher,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(spec.origin).parent.parent),
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


def _wants_temporary_server(settings: Any) -> bool:
    """What Prefect's get_client() asks before it starts its temporary server."""
    return not settings.api.url and bool(settings.server.ephemeral.enabled)


def _off(value: str | None) -> bool:
    return (value or "").strip().lower() in ("0", "false", "no", "off")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


__all__ = ["QUIET_DEFAULTS", "TemporaryServer", "apply_quiet_defaults"]
