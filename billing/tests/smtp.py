"""A real SMTP server for tests (aiosmtpd on 127.0.0.1 and a free port), and the MAILERS entry for it.

``SmtpSink`` can be stopped and started again on the same port to simulate a mail-server outage.
"""

from __future__ import annotations

import email
import socket
import threading
from email.message import EmailMessage as ParsedMessage
from email.policy import default as default_policy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        with self.sink.lock:
            self.sink.messages.append(message)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.messages: list[ParsedMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()
        self._controller = None

    @property
    def mailers(self) -> dict:
        return {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 5},
            }
        }

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[ParsedMessage]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.1)
        raise AssertionError(f"expected {count} e-mail(s) at the SMTP server, got {len(self.messages)}")


def pdf_attachments(message: ParsedMessage) -> list[tuple[str, bytes]]:
    return [
        (part.get_filename(), part.get_content())
        for part in message.iter_attachments()
        if part.get_content_type() == "application/pdf"
    ]
