"""SMTP servers from outside: one that fails at each step of a session in turn, and one that
never stops answering (an endless multi-line reply: smtplib read it for as long as it came, its
memory growing 1.7 GB in 20 s). Each is a SendError with a reason from the fixed set, at once,
and never shows the password."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from newsmon.channels.email import SendError, send
from newsmon.core.settings import Settings

PASSWORD = "smtp-Secret-hostile-77"
STEPS = {  # the command that fails -> (the reply, the reason newsmon gives)
    "greeting": (b"554 no service\r\n", "smtp_error"),
    "EHLO": (b"502 not here\r\n", "smtp_error"),
    "AUTH": (b"535 no\r\n", "smtp_auth"),
    "MAIL": (b"550 sender refused\r\n", "smtp_refused"),
    "RCPT": (b"550 no such user\r\n", "smtp_refused"),
    "DATA": (b"554 not now\r\n", "smtp_refused"),
    "message": (b"451 try again later\r\n", "smtp_refused"),
}


def _session(conn: socket.socket, fail: str) -> None:
    def reply(step: str, ok: bytes) -> bool:
        conn.sendall(STEPS[step][0] if fail == step else ok)
        return fail != step

    reader = conn.makefile("rb")
    if not reply("greeting", b"220 hostile ESMTP\r\n"):
        return
    in_data = False
    for line in reader:
        if in_data:
            if line == b".\r\n":
                in_data = False
                if not reply("message", b"250 queued\r\n"):
                    return
            continue
        verb = line.split(b" ", 1)[0].strip().upper().decode()
        if verb in ("EHLO", "HELO"):
            if not reply("EHLO", b"250-hostile\r\n250 AUTH PLAIN LOGIN\r\n"):
                continue  # smtplib falls back to HELO, which fails too
        elif verb == "AUTH":
            if not reply("AUTH", b"235 ok\r\n"):
                continue
        elif verb in ("MAIL", "RCPT"):
            reply(verb, b"250 ok\r\n")
        elif verb == "DATA":
            in_data = reply("DATA", b"354 go on\r\n")
        elif verb == "QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        else:
            conn.sendall(b"250 ok\r\n")


def _endless(conn: socket.socket) -> None:
    conn.sendall(b"220-hello\r\n")
    while True:
        conn.sendall(b"220-and more, and more, and more\r\n" * 100)


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[str]]]:
    """A raw SMTP server on 127.0.0.1; the test sets ``behaviour[0]`` per connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    behaviour: list[str] = ["ok"]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return

            def talk(conn: socket.socket = conn, mode: str = behaviour[0]) -> None:
                with conn:
                    try:
                        if mode == "endless":
                            _endless(conn)
                        else:
                            _session(conn, mode)
                    except OSError:
                        pass

            threading.Thread(target=talk, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], behaviour
    listener.close()


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "n@example.org", "a@example.org", "d"
    message.set_content("digest")
    return message


def _settings(port: int) -> Settings:
    return Settings.from_env(
        {
            "NEWSMON_SMTP_HOST": "127.0.0.1",
            "NEWSMON_SMTP_PORT": str(port),
            "NEWSMON_SMTP_SECURITY": "none",
            "NEWSMON_SMTP_USER": "newsmon",
            "NEWSMON_SMTP_PASSWORD": PASSWORD,
            "NEWSMON_SMTP_TIMEOUT": "5",
        }
    )


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_server_failing_at_any_step_is_a_send_error_with_a_reason(
    smtp_server: tuple[int, list[str]], step: str
) -> None:
    port, behaviour = smtp_server
    behaviour[0] = step
    settings = _settings(port)
    with pytest.raises(SendError) as info:
        send(_message(), settings, settings.smtp_password)
    assert info.value.reason == STEPS[step][1], str(info.value)
    assert PASSWORD not in str(info.value)


def test_a_server_that_never_stops_answering_is_cut_off(
    smtp_server: tuple[int, list[str]],
) -> None:
    port, behaviour = smtp_server
    behaviour[0] = "endless"
    settings = _settings(port)
    with pytest.raises(SendError) as info:
        send(_message(), settings, settings.smtp_password)
    assert info.value.reason == "smtp_disconnected"
    assert "never ended" in str(info.value)


def test_the_scripted_server_accepts_a_whole_session(smtp_server: tuple[int, list[str]]) -> None:
    """The failures above are the steps', not the script's: with none, the message goes."""
    port, _ = smtp_server
    settings = _settings(port)
    send(_message(), settings, settings.smtp_password)
