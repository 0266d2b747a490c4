"""Receivers on loopback for the notifications' tests: a small SMTP server that keeps the
messages it is sent (the SMTP commands smtplib uses, no TLS, no authentication), and an HTTP
server that keeps the JSON bodies posted to it (what Slack's incoming webhook receives)."""

from __future__ import annotations

import email
import email.policy
import json
import socketserver
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cicd_devkit.loopback import STOP_POLL

_MAX_LINE = 65_536
_MAX_MESSAGE = 5_000_000


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage


class _SmtpHandler(socketserver.StreamRequestHandler):
    """One SMTP conversation; the messages go to the server's ``mails``."""

    server: _SmtpServer

    def reply(self, text: str) -> None:
        self.wfile.write(f"{text}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 sink ESMTP")
        self.sender, self.recipients = "", []
        while line := self.rfile.readline(_MAX_LINE):
            command = line.decode("utf-8", "replace").strip()
            if not self.answer(command[:4].upper(), command):
                return

    def answer(self, verb: str, command: str) -> bool:
        """Answer one command; False ends the conversation."""
        argument = command.split(":", 1)[1].strip(" <>") if ":" in command else ""
        if verb == "EHLO":
            self.reply("250-sink\r\n250 8BITMIME")
        elif verb == "MAIL":
            self.sender, self.recipients = argument, []
            self.reply("250 OK")
        elif verb == "RCPT":
            self.recipients.append(argument)
            self.reply("250 OK")
        elif verb == "DATA":
            self.reply("354 end with <CRLF>.<CRLF>")
            self.server.mails.append(Mail(self.sender, list(self.recipients), self._message()))
            self.reply("250 OK queued")
        elif verb == "QUIT":
            self.reply("221 bye")
            return False
        else:  # HELO, RSET, NOOP and the rest
            self.reply("250 OK")
        return True

    def _message(self) -> EmailMessage:
        lines: list[bytes] = []
        size = 0
        while (line := self.rfile.readline(_MAX_LINE)) not in (b".\r\n", b".\n", b""):
            size += len(line)
            if size < _MAX_MESSAGE:
                lines.append(line[1:] if line.startswith(b"..") else line)
        parsed = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
        return parsed  # type: ignore[return-value]


class _SmtpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, mails: list[Mail]) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.mails = mails


@dataclass
class SmtpSink:
    """An SMTP server on 127.0.0.1 (``port``) keeping every message in ``mails``."""

    mails: list[Mail] = field(default_factory=list)
    _server: _SmtpServer | None = None

    def start(self) -> SmtpSink:
        self._server = _SmtpServer(self.mails)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": STOP_POLL}, daemon=True
        ).start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class WebhookSink:
    """An HTTP server on 127.0.0.1 keeping the JSON of every POST in ``posts`` (it answers
    ``ok``, as Slack's incoming webhooks do)."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), _MAX_MESSAGE)
                body = self.rfile.read(length)
                try:
                    sink.posts.append(json.loads(body))
                except ValueError:
                    sink.posts.append({"raw": body.decode("utf-8", "replace")})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": STOP_POLL}, daemon=True
        ).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
