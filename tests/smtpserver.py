"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it receives, or misbehaves."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Handler:
    """``mode``: ``accept``, ``refuse`` (554 to DATA) or ``drop`` (close the connection in DATA)."""

    mode: str = "accept"
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mode == "refuse":
            return "554 5.7.1 Message rejected by policy"
        if self.mode == "drop":
            server.transport.close()
            return "421 closing"
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(handler: Handler, *, password: str | None = None) -> Iterator[tuple[str, int]]:
    """Serve ``handler`` on 127.0.0.1; with ``password``, require login as ``newsmon``."""
    kwargs: dict[str, Any] = {}
    if password is not None:

        def authenticate(server: Any, session: Any, envelope: Any, mech: str, data: Any) -> Any:
            ok = (
                isinstance(data, LoginPassword)
                and data.login == b"newsmon"
                and data.password == password.encode()
            )
            return AuthResult(success=ok, handled=False)  # False: the server replies 535

        kwargs = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()
