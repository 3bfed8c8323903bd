"""Misbehaving upstream servers on 127.0.0.1 for client tests.

``ScriptedUpstream`` answers each request with the next canned response from a
script (the last one repeats) and records every request's query, so a test can
stage slow responses, malformed JSON, rate limits and error bodies, then check
what the client sent. ``refused_port()`` returns a loopback port with no
listener.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from support.processes import free_port


@dataclass(frozen=True)
class Canned:
    """One scripted response: a JSON value or raw bytes, optionally sent after a delay."""

    body: Any = None
    status: int = 200
    raw: bytes | None = None
    delay_s: float = 0.0


class ScriptedUpstream:
    """HTTP server on 127.0.0.1 that plays a script of canned responses in order."""

    def __init__(self, script: list[Canned]) -> None:
        if not script:
            raise ValueError("script is empty: give at least one canned response")
        self.queries: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._script = list(script)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    def __enter__(self) -> ScriptedUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Wake delayed handlers first so shutdown does not wait for them.
        self._released.set()
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()

    def _next(self, target: str) -> Canned:
        parts = urlsplit(target)
        with self._lock:
            self.paths.append(parts.path)
            self.queries.append(dict(parse_qsl(parts.query, keep_blank_values=True)))
            index = min(len(self.queries) - 1, len(self._script) - 1)
            return self._script[index]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
                canned = upstream._next(self.path)
                if canned.delay_s:
                    upstream._released.wait(canned.delay_s)
                payload = canned.raw if canned.raw is not None else json.dumps(canned.body).encode()
                try:
                    self.send_response(canned.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    # The client gave up on a delayed response and closed the socket.
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def refused_port() -> int:
    """Return a loopback port that had a listener a moment ago and now has none."""
    return free_port()


def ok_rows(rows: list[dict[str, Any]]) -> Canned:
    """Return the explorer's success response for a list query."""
    return Canned({"status": "1", "message": "OK", "result": rows})


def notok(text: str) -> Canned:
    """Return the explorer's failure response with ``text`` as its result."""
    return Canned({"status": "0", "message": "NOTOK", "result": text})
