"""Wallet history from an Etherscan-compatible explorer API."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from .config import EXPLORER_WINDOW_ROWS, Settings
from .errors import (
    UpstreamError,
    UpstreamResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

Row = dict[str, Any]


@dataclass(frozen=True)
class WalletHistory:
    """Everything the explorer returned for one wallet, as the API returned it.

    Rows keep the API's decimal strings; parsing them is the feature code's job.
    """

    address: str
    """Canonical lower-case address."""
    chain_id: str
    """Chain id sent to the explorer, or "" when none was sent."""
    sources: tuple[str, ...]
    """Account actions that were fetched, such as ``txlist`` and ``balance``."""
    transactions: tuple[Row, ...] = ()
    internal_transactions: tuple[Row, ...] = ()
    token_transfers: tuple[Row, ...] = ()
    balance_wei: int | None = None
    """Balance in wei, or None when ``balance`` is not among the sources."""
    truncated: tuple[str, ...] = ()
    """Sources whose rows hit the configured row cap."""


# Account actions whose result is a list of rows, and the WalletHistory field each fills.
ROW_FIELDS = {
    "txlist": "transactions",
    "txlistinternal": "internal_transactions",
    "tokentx": "token_transfers",
}

# Row fields that change between two fetches of the same row: ``confirmations``
# grows with every new block, so it is left out when rows are compared.
VOLATILE_ROW_FIELDS = frozenset({"confirmations"})

# Retried HTTP statuses: the explorer is rate-limiting or briefly down.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

_EXPLORER = "explorer"
_MAX_QUOTED_CHARS = 200

logger = logging.getLogger(__name__)


class ExplorerClient:
    """Async client that reads one wallet's history from an Etherscan-compatible API.

    Use it as ``async with ExplorerClient(settings) as client`` or call
    ``aclose()``. A client passed in as ``http_client`` belongs to the caller and
    is not closed here. ``window_rows`` is the explorer's cap on page x offset
    for one query window; tests shrink it to exercise the block-range rollover.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http_client: httpx.AsyncClient | None = None,
        window_rows: int = EXPLORER_WINDOW_ROWS,
    ) -> None:
        if window_rows < 1:
            raise ValueError(f"invalid window_rows {window_rows}: expected at least 1")

        self._url = settings.explorer_url
        self._chain_id = settings.explorer_chain_id
        self._sources = settings.explorer_sources
        self._timeout = httpx.Timeout(settings.explorer_timeout_s)
        self._page_size = min(settings.explorer_page_size, window_rows)
        self._max_rows = settings.explorer_max_rows
        self._retries = settings.explorer_retries
        self._backoff_s = settings.explorer_backoff_s
        self._window_rows = window_rows

        key = settings.explorer_api_key
        self._api_key = key.get_secret_value() if key is not None else None
        self._redactor = _KeyRedactor(self._api_key)
        _install_httpx_redaction()

        self._owns_http_client = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()

    async def __aenter__(self) -> ExplorerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool, unless the caller passed it in."""
        if self._owns_http_client:
            await self._http.aclose()

    async def fetch_history(self, address: str) -> WalletHistory:
        """Fetch every configured source for ``address`` (canonical lower case).

        Raises ``UpstreamError`` subclasses when any source fails, because a
        partial history would give a wrong score.
        """
        jobs = [self._fetch_source(source, address) for source in self._sources]
        results = await _gather_or_cancel(jobs)
        by_source = dict(zip(self._sources, results, strict=True))

        rows_by_field: dict[str, tuple[Row, ...]] = {}
        truncated = []
        for source, field_name in ROW_FIELDS.items():
            if source not in by_source:
                continue
            rows, was_truncated = by_source[source]
            rows_by_field[field_name] = tuple(rows)
            if was_truncated:
                truncated.append(source)

        return WalletHistory(
            address=address,
            chain_id=self._chain_id,
            sources=self._sources,
            balance_wei=by_source.get("balance"),
            truncated=tuple(truncated),
            **rows_by_field,
        )

    async def _fetch_source(self, source: str, address: str) -> Any:
        if source == "balance":
            return await self._fetch_balance(address)
        return await self._fetch_rows(source, address)

    async def _fetch_balance(self, address: str) -> int:
        params = {"module": "account", "action": "balance", "address": address, "tag": "latest"}
        result = await self._call(params, description="balance")

        if not isinstance(result, str) or not (result.isascii() and result.isdigit()):
            raise UpstreamResponseError(
                f"explorer balance response is invalid: expected a decimal string of wei, "
                f"got {self._quote(result)}; check that EXPLORER_URL points at an "
                f"Etherscan-compatible API",
                upstream=_EXPLORER,
            )
        return int(result)

    async def _fetch_rows(self, action: str, address: str) -> tuple[list[Row], bool]:
        """Page through one action's rows in ascending block order.

        Returns the rows and whether the row cap cut them short.
        """
        collector = _RowCollector(self._max_rows)
        start_block = 0

        while True:
            window_full = await self._fetch_window(action, address, start_block, collector)
            if collector.capped or not window_full:
                return collector.rows, collector.capped

            next_start = collector.last_block
            if next_start <= start_block:
                # One block contains more rows than a query window, and the
                # explorer cannot page past it. Keep the rows so far and mark the cap.
                logger.warning(
                    "explorer %s: block %d has more rows than one query window (%d), "
                    "so %s stops there and is marked truncated",
                    action, start_block, self._window_rows, action,
                )
                return collector.rows, True
            collector.start_window(next_start)
            start_block = next_start

    async def _fetch_window(
        self, action: str, address: str, start_block: int, collector: _RowCollector
    ) -> bool:
        """Fetch the pages of one query window; returns True when every page was full."""
        last_page = self._window_rows // self._page_size

        for page in range(1, last_page + 1):
            params = {
                "module": "account",
                "action": action,
                "address": address,
                "startblock": str(start_block),
                "endblock": "99999999",
                "page": str(page),
                "offset": str(self._page_size),
                "sort": "asc",
            }
            description = f"{action} page {page} from block {start_block}"
            result = await self._call(params, description=description, page=page)
            rows = self._check_rows(result, description)

            page_full = len(rows) >= self._page_size
            collector.add(rows, more_may_follow=page_full)
            if collector.capped or not page_full:
                return False
        return True

    def _check_rows(self, result: Any, description: str) -> list[Row]:
        if isinstance(result, list) and all(isinstance(row, dict) for row in result):
            return result
        raise UpstreamResponseError(
            f"explorer {description} response is invalid: expected a list of rows, "
            f"got {self._quote(result)}; check that EXPLORER_URL points at an "
            f"Etherscan-compatible API",
            upstream=_EXPLORER,
        )

    async def _call(self, params: dict[str, str], *, description: str, page: int = 0) -> Any:
        """Send one query, retrying rate limits and transient HTTP errors; returns ``result``."""
        attempt = 0
        while True:
            try:
                return await self._call_once(params, description=description, page=page)
            except _Retryable as retryable:
                if attempt >= self._retries:
                    raise retryable.final_error() from retryable
                delay = self._backoff_s * 2**attempt
                logger.warning(
                    "explorer %s: %s; retry %d of %d in %.2f s",
                    description, retryable.reason_text, attempt + 1, self._retries, delay,
                )
                await asyncio.sleep(delay)
                attempt += 1

    async def _call_once(self, params: dict[str, str], *, description: str, page: int) -> Any:
        started = time.perf_counter()
        outcome, row_count = "error", "-"
        try:
            response = await self._send(params, description=description)
            outcome = str(response.status_code)
            body = self._decode(response, description)
            if isinstance(body["result"], list):
                row_count = str(len(body["result"]))
            return self._unwrap(body, description)
        except UpstreamTimeoutError:
            outcome = "timeout"
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "explorer call action=%s page=%d status=%s rows=%s elapsed_ms=%.0f",
                params["action"], page, outcome, row_count, elapsed_ms,
            )

    async def _send(self, params: dict[str, str], *, description: str) -> httpx.Response:
        query = self._query(params)
        try:
            response = await self._http.get(self._url, params=query, timeout=self._timeout)
        except httpx.TimeoutException as error:
            raise UpstreamTimeoutError(
                f"explorer {description} timed out after {self._timeout.read} s; "
                f"raise EXPLORER_TIMEOUT_S or check the explorer's status",
                upstream=_EXPLORER,
            ) from error
        except httpx.TransportError as error:
            raise UpstreamUnavailableError(
                f"explorer {description} failed: cannot reach {self._redacted_url()} "
                f"({type(error).__name__}: {self._redactor.redact(str(error))}); "
                f"check EXPLORER_URL and the network",
                upstream=_EXPLORER,
            ) from error
        return response

    def _query(self, params: dict[str, str]) -> dict[str, str]:
        query = {}
        if self._chain_id:
            query["chainid"] = self._chain_id
        query.update(params)
        if self._api_key is not None:
            query["apikey"] = self._api_key
        return query

    def _decode(self, response: httpx.Response, description: str) -> dict[str, Any]:
        status = response.status_code
        if status in RETRY_STATUSES:
            reason = "rate_limited" if status == 429 else "unavailable"
            raise _Retryable(
                f"HTTP {status}",
                UpstreamUnavailableError(
                    f"explorer {description} failed with HTTP {status} after "
                    f"{self._retries} retries; try again later",
                    upstream=_EXPLORER,
                    reason=reason,
                ),
            )
        if status != 200:
            raise UpstreamResponseError(
                f"explorer {description} failed with HTTP {status}; check EXPLORER_URL "
                f"and EXPLORER_CHAIN_ID",
                upstream=_EXPLORER,
            )

        try:
            body = response.json()
        except ValueError as error:
            raise UpstreamResponseError(
                f"explorer {description} response is not valid JSON; check that "
                f"EXPLORER_URL points at an Etherscan-compatible API",
                upstream=_EXPLORER,
            ) from error

        if not isinstance(body, dict) or not {"status", "message", "result"} <= body.keys():
            raise UpstreamResponseError(
                f"explorer {description} response is invalid: expected an object with "
                f"status, message and result, got {self._quote(body)}",
                upstream=_EXPLORER,
            )
        return body

    def _unwrap(self, body: dict[str, Any], description: str) -> Any:
        status, message, result = body["status"], body["message"], body["result"]
        if status == "1":
            return result
        if status == "0" and result == []:
            # "No transactions found" is an empty history, not a failure.
            return result

        text = result if isinstance(result, str) else message
        quoted = self._quote(text if isinstance(text, str) else body)
        if isinstance(text, str) and "rate limit" in text.lower():
            raise _Retryable(
                f"rate limited ({quoted})",
                UpstreamUnavailableError(
                    f"explorer {description} is still rate limited after "
                    f"{self._retries} retries: {quoted}; lower the request rate or use "
                    f"an API key with a higher limit",
                    upstream=_EXPLORER,
                    reason="rate_limited",
                ),
            )
        raise UpstreamResponseError(
            f"explorer {description} failed: {quoted}; check EXPLORER_API_KEY, "
            f"EXPLORER_CHAIN_ID and the address",
            upstream=_EXPLORER,
        )

    def _quote(self, value: Any) -> str:
        """Quote an explorer value for a message: shortened, with the API key removed."""
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        text = self._redactor.redact(text)
        if len(text) > _MAX_QUOTED_CHARS:
            text = text[:_MAX_QUOTED_CHARS] + "..."
        return repr(text)

    def _redacted_url(self) -> str:
        parts = httpx.URL(self._url)
        return str(parts.copy_with(query=None, fragment=None))


class _Retryable(Exception):
    """A failed call that may succeed later; carries the error to raise when retries run out."""

    def __init__(self, reason_text: str, final: UpstreamError) -> None:
        super().__init__(reason_text)
        self.reason_text = reason_text
        self._final = final

    def final_error(self) -> UpstreamError:
        return self._final


class _RowCollector:
    """Rows of one action across query windows, without the rows windows share.

    A new window starts at the previous window's last block, so rows of that
    block come back again. Only those repeats are dropped: two identical rows
    within one window are both kept.
    """

    def __init__(self, max_rows: int) -> None:
        self.rows: list[Row] = []
        self.capped = False
        self._max_rows = max_rows
        self._repeats: Counter[str] = Counter()
        self._boundary_block = -1

    @property
    def last_block(self) -> int:
        return _block_number(self.rows[-1]) if self.rows else 0

    def start_window(self, start_block: int) -> None:
        self._boundary_block = start_block
        self._repeats = Counter(
            row_identity(row) for row in self.rows if _block_number(row) == start_block
        )

    def add(self, rows: list[Row], *, more_may_follow: bool) -> None:
        for row in rows:
            if _block_number(row) == self._boundary_block:
                identity = row_identity(row)
                if self._repeats[identity] > 0:
                    self._repeats[identity] -= 1
                    continue
            if len(self.rows) >= self._max_rows:
                self.capped = True
                return
            self.rows.append(row)

        # Reaching the cap on a full page counts as cut short, because finding
        # out whether more rows exist would cost one more call.
        if len(self.rows) >= self._max_rows and more_may_follow:
            self.capped = True


class _KeyRedactor:
    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key

    def redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return _APIKEY_PARAM.sub(r"\1[redacted]", text)


_APIKEY_PARAM = re.compile(r"(apikey=)[^&\s\"']+", re.IGNORECASE)


class _HttpxUrlRedaction(logging.Filter):
    """Remove ``apikey`` values from httpx's own request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _APIKEY_PARAM.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        return True


def _install_httpx_redaction() -> None:
    """Make httpx's INFO request lines safe to log.

    httpx logs every request URL, and the explorer takes its API key as a query
    parameter, so without this filter any INFO-level handler would record the key.
    """
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(existing, _HttpxUrlRedaction) for existing in httpx_logger.filters):
        httpx_logger.addFilter(_HttpxUrlRedaction())


def _block_number(row: Row) -> int:
    try:
        return int(row.get("blockNumber", ""))
    except (TypeError, ValueError) as error:
        raise UpstreamResponseError(
            f"explorer row has an invalid blockNumber {str(row.get('blockNumber'))[:40]!r}: "
            f"expected a decimal string",
            upstream=_EXPLORER,
        ) from error


def row_identity(row: Row) -> str:
    """Return a key that is equal for two fetches of the same explorer row."""
    stable = {name: value for name, value in row.items() if name not in VOLATILE_ROW_FIELDS}
    return json.dumps(stable, sort_keys=True, default=str)


async def _gather_or_cancel(jobs: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run coroutines concurrently; on the first failure cancel the rest and re-raise it."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
