"""Replay recorded Etherscan-compatible explorer responses on a local port.

The replay explorer lets demos, tests and audits run the oracle's real HTTP
client against real wallet histories without reaching the internet. Each
recording file is JSON of the form ``{"description", "source", "wallets",
"interactions": [{"method", "url", "status", "body"}]}``.

A query is matched on its URL path and every query parameter except the ones
that select rows (``startblock``, ``endblock``, ``page``, ``offset``, ``sort``),
``apikey``, and ``tag=latest``, which is the explorer's default. Parameter names and values are compared in lower case, so
checksummed and lower-case addresses match. Rows recorded for one query in
several interactions are merged, so a full-range fetch and a later re-fetch of
a block range replay as one history. Two rows are the same when they differ
only in ``confirmations``, and the first recorded copy is kept.

Tests run a replay in-process with ``ReplayServer``::

    with ReplayServer(load_recordings(directory)) as server:
        url = server.url + "/v2/api"
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .config import EXPLORER_WINDOW_ROWS
from .errors import ConfigError
from .explorer import row_identity

logger = logging.getLogger(__name__)

Row = dict[str, Any]

# Query parameters that select rows from a recording instead of naming it.
SELECTION_PARAMS = frozenset({"startblock", "endblock", "page", "offset", "sort"})
IGNORED_PARAMS = frozenset({"apikey"})
# Parameters at the explorer's default value match recordings that omit them.
DEFAULT_PARAMS = {"tag": "latest"}

NO_ROWS_BODY = {"status": "0", "message": "No transactions found", "result": []}


class BadQueryError(Exception):
    """A replay query is malformed, so the server returns 400 with this message."""


@dataclass
class _Recording:
    """Everything recorded for one query key."""

    rows: list[Row] | None = None
    """Merged rows when some interaction returned a list result, else None."""
    fixed_status: int = 200
    fixed_body: Any = None
    """The first non-list response recorded (balance, NOTOK and similar)."""
    _row_identities: set[str] = field(default_factory=set)

    def add_rows(self, rows: list[Row]) -> None:
        if self.rows is None:
            self.rows = []
        for row in rows:
            identity = row_identity(row)
            if identity not in self._row_identities:
                self._row_identities.add(identity)
                self.rows.append(row)


class Recordings:
    """Recorded explorer responses, indexed by query key."""

    def __init__(self) -> None:
        self._by_key: dict[str, _Recording] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def keys(self) -> Iterator[str]:
        return iter(self._by_key)

    def add(self, url: str, status: int, body: Any) -> None:
        """Add one recorded interaction; list results merge with earlier rows for the key."""
        path, params = _split_url(url)
        key = query_key(path, params)
        recording = self._by_key.setdefault(key, _Recording())

        result = body.get("result") if isinstance(body, dict) else None
        if isinstance(result, list):
            recording.add_rows(result)
        elif recording.fixed_body is None:
            recording.fixed_status = status
            recording.fixed_body = body

    def response_for(
        self, path: str, params: dict[str, str], *, window_rows: int = EXPLORER_WINDOW_ROWS
    ) -> tuple[int, Any]:
        """Return the HTTP status and JSON body the explorer gave for this query.

        Raises ``BadQueryError`` for a malformed query. An unrecorded query gets
        404 with a body naming its key.
        """
        for required in ("module", "action"):
            if not params.get(required):
                raise BadQueryError(f"missing query parameter {required!r}: an explorer "
                                    f"query needs module and action")

        key = query_key(path, params)
        recording = self._by_key.get(key)
        if recording is None:
            message = (f"no recorded response for query {key!r}: check the URL path, "
                       f"chainid and address, or add a recording of this query")
            return 404, {"error": message, "query": key}

        # A recorded list response wins over a recorded error for the same query.
        if recording.rows is None:
            return recording.fixed_status, recording.fixed_body
        return 200, _select_rows(recording.rows, params, window_rows)


def query_key(path: str, params: dict[str, str]) -> str:
    """Build the key that names a recorded query: path plus its identifying parameters."""
    path = path.rstrip("/") or "/"
    identifying = sorted(
        (name.lower(), value.lower())
        for name, value in params.items()
        if name.lower() not in SELECTION_PARAMS | IGNORED_PARAMS
        and DEFAULT_PARAMS.get(name.lower()) != value.lower()
    )
    return f"{path}?{urlencode(identifying)}"


def load_recordings(directory: Path) -> Recordings:
    """Read every ``*.json`` recording file in ``directory``.

    Raises ``ConfigError`` naming the file and the problem when a file is not a
    valid recording, or when the directory contains none.
    """
    if not directory.is_dir():
        raise ConfigError(f"recordings directory {str(directory)!r} not found: "
                          f"pass a directory of *.json recording files")

    files = sorted(directory.glob("*.json"))
    if not files:
        raise ConfigError(f"no *.json recording files in {str(directory)!r}: "
                          f"pass a directory of recorded explorer responses")

    recordings = Recordings()
    for path in files:
        _load_file(path, recordings)
    logger.info("loaded %d recorded queries from %d files in %s", len(recordings), len(files),
                directory)
    return recordings


def _load_file(path: Path, recordings: Recordings) -> None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"invalid recording file {str(path)!r}: {error}") from error

    interactions = document.get("interactions") if isinstance(document, dict) else None
    if not isinstance(interactions, list):
        raise ConfigError(f"invalid recording file {str(path)!r}: expected an object with an "
                          f"'interactions' list")

    for index, interaction in enumerate(interactions):
        problem = _check_interaction(interaction)
        if problem:
            raise ConfigError(f"invalid recording file {str(path)!r}: interaction {index} "
                              f"{problem}")
        recordings.add(interaction["url"], interaction.get("status", 200), interaction["body"])


def _check_interaction(interaction: Any) -> str | None:
    """Describe what is wrong with one recorded interaction, or return None."""
    if not isinstance(interaction, dict):
        return "is not an object"
    if not isinstance(interaction.get("url"), str):
        return "has no 'url' string"
    if "body" not in interaction:
        return "has no 'body'"
    status = interaction.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        return f"has an invalid HTTP status {status!r}"
    if interaction.get("method", "GET") != "GET":
        return f"uses method {interaction.get('method')!r}, but only GET is replayed"

    result = interaction["body"].get("result") if isinstance(interaction["body"], dict) else None
    if isinstance(result, list):
        for row in result:
            if not isinstance(row, dict) or _block_number_or_none(row) is None:
                return "has a row without a decimal blockNumber"
    return None


def _select_rows(rows: list[Row], params: dict[str, str], window_rows: int) -> dict[str, Any]:
    """Filter, sort and slice rows the way the explorer does for a list query."""
    lowered = {name.lower(): value for name, value in params.items()}
    start_block = _int_param(lowered, "startblock", 0)
    end_block = _int_param(lowered, "endblock", None)
    sort = lowered.get("sort", "asc").lower()
    if sort not in ("asc", "desc"):
        raise BadQueryError(f"invalid sort {sort!r}: use asc or desc")

    selected = [
        row for row in rows
        if _block_number(row) >= start_block
        and (end_block is None or _block_number(row) <= end_block)
    ]
    selected.sort(key=_block_number, reverse=sort == "desc")

    offset = _int_param(lowered, "offset", None)
    if offset is not None:
        page = _int_param(lowered, "page", 1)
        if page < 1 or offset < 1:
            raise BadQueryError(f"invalid page {page} or offset {offset}: both must be at least 1")
        if page * offset > window_rows:
            return {
                "status": "0",
                "message": "NOTOK",
                "result": f"Result window is too large, PageNo x Offset size must be less "
                          f"than or equal to {window_rows}",
            }
        selected = selected[(page - 1) * offset:page * offset]

    if not selected:
        return dict(NO_ROWS_BODY)
    return {"status": "1", "message": "OK", "result": selected}


def _int_param(params: dict[str, str], name: str, default: int | None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit():
        raise BadQueryError(f"invalid {name} {value!r}: expected a non-negative decimal integer")
    return int(value)


def _block_number(row: Row) -> int:
    return int(row["blockNumber"])


def _block_number_or_none(row: Row) -> int | None:
    value = row.get("blockNumber")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


def _redact_query(target: str) -> str:
    path, params = _split_url(target)
    shown = {name: ("[redacted]" if name.lower() in IGNORED_PARAMS else value)
             for name, value in params.items()}
    return f"{path}?{urlencode(shown, safe='[]')}" if shown else path


class _ReplayHandler(BaseHTTPRequestHandler):
    server: _ReplayHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
        path, params = _split_url(self.path)
        try:
            status, body = self.server.recordings.response_for(
                path, params, window_rows=self.server.window_rows
            )
        except BadQueryError as error:
            status, body = 400, {"error": str(error)}
        except Exception:
            # The client gets a JSON error, never a traceback, and the log keeps the traceback.
            logger.exception("replay failed for %s", _redact_query(self.path))
            status, body = 500, {"error": "internal error in the replay explorer"}
        self._send_json(status, body)

    def do_POST(self) -> None:  # noqa: N802 - name fixed by http.server
        self._send_json(405, {"error": "method not allowed: the replay explorer serves GET only"})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server sends an HTML page for unsupported methods and malformed
        # request lines, but clients of an explorer API expect JSON.
        phrase = message or HTTPStatus(code).phrase
        self.close_connection = True
        self._send_json(code, {"error": f"{phrase}: the replay explorer serves GET only"})

    def _send_json(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        phrase = code.phrase if isinstance(code, HTTPStatus) else ""
        logger.debug("replay %s %s -> %s %s", self.command, _redact_query(self.path), code, phrase)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # http.server writes errors to stderr with the raw path, which may carry an API key.
        logger.debug("replay: %s", _redact_query(format % args))


class _ReplayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], recordings: Recordings, window_rows: int) -> None:
        self.recordings = recordings
        self.window_rows = window_rows
        super().__init__(address, _ReplayHandler)


class ReplayServer:
    """A replay explorer bound to a port, served from a background thread or in the foreground.

    The socket is bound in the constructor, so ``url`` is known before ``start()``.
    ``port=0`` lets the OS choose a free port. ``window_rows`` is the cap on
    page x offset; queries beyond it get the explorer's NOTOK response.
    """

    def __init__(
        self,
        recordings: Recordings,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        window_rows: int = EXPLORER_WINDOW_ROWS,
    ) -> None:
        try:
            self._server = _ReplayHTTPServer((host, port), recordings, window_rows)
        except OSError as error:
            raise ConfigError(f"cannot listen on {host}:{port}: {error}; "
                              f"choose another port or host") from error
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL without path, such as ``http://127.0.0.1:8545``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReplayServer:
        """Serve from a daemon thread; returns self."""
        # A short poll interval makes stop() return quickly, which keeps tests fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="replay-explorer",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` is called from another thread."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_replay(directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve the recordings in ``directory`` until interrupted.

    Prints one flushed line with the URL it listens on, so a caller that passed
    ``port=0`` can read the port the OS chose.
    """
    recordings = load_recordings(directory)
    server = ReplayServer(recordings, host, port)
    print(f"replay-explorer listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("replay-explorer interrupted, stopping")
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """Run ``python -m evm_score_oracle.replay DIR [--host H] [--port N]``."""
    parser = argparse.ArgumentParser(
        prog="replay-explorer", description="Serve recorded explorer responses on a local port."
    )
    parser.add_argument("directory", type=Path, help="directory of *.json recording files")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 lets the OS choose")
    args = parser.parse_args(argv)

    try:
        serve_replay(args.directory, args.host, args.port)
    except ConfigError as error:
        parser.exit(2, f"replay-explorer: {error}\n")


if __name__ == "__main__":
    main()
