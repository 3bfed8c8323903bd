"""Deterministic wallet features from explorer rows.

``extract_features`` is a pure function of the rows dated at or before
``as_of`` and of the balance, so the same history always gives the same
features. Its cost is linear in the number of rows: each row kind takes one
pass to drop duplicates and undated rows and one pass to count.

Parsing rules, applied to every row kind:

- Numbers must be decimal digit strings (or ints), as Etherscan returns them.
- A row whose ``timeStamp`` is missing or not a number cannot be placed in
  time, so it is skipped and counted in ``skipped_rows``.
- A missing or non-numeric ``value``, ``gasUsed`` or ``gasPrice`` counts as 0.
- A transaction failed when ``isError`` is "1" or ``txreceipt_status`` is "0".
  ``txreceipt_status`` is "" before the Byzantium fork and ``isError`` may be
  missing; neither marks a failure.
- Duplicate rows (same transaction hash, or for internal and token rows the
  same hash and transfer) are counted once, because overlapping query windows
  can return a row twice.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from .explorer import Row, WalletHistory
from .protocols import protocol_at

WEI_PER_ETH = 10**18
SECONDS_PER_DAY = 86_400
RECENT_WINDOWS_DAYS = (1, 7, 30, 90)

# Per-transaction cap for the capped volume: one large transfer cannot
# dominate the value that a wallet has moved over its lifetime.
VOLUME_CAP_PER_TX_WEI = WEI_PER_ETH

# Short name for the hot loops, which spell out min() because the builtin call
# costs several times the comparison.
_CAP = VOLUME_CAP_PER_TX_WEI

_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_SELECTOR_CHARS = 10  # "0x" + 4 bytes


@dataclass(frozen=True)
class Features:
    """Counts and amounts describing one wallet up to ``as_of``.

    Amounts are exact integers in wei, and ``as_dict`` renders them in ETH.
    """

    tx_count: int = 0
    """Normal transactions (``txlist`` rows)."""
    outgoing_count: int = 0
    """Transactions sent by the wallet, including self-transfers and contract creations."""
    incoming_count: int = 0
    """Transactions to the wallet from another sender, including genesis allocations."""
    self_transfer_count: int = 0
    """Transactions from the wallet to itself; also counted in ``outgoing_count``."""
    contract_creation_count: int = 0
    failed_count: int = 0
    """Failed transactions sent by the wallet."""
    failed_permille: int = 0
    """``failed_count`` per 1000 outgoing transactions, rounded down, or 0 with none."""
    successful_tx_count: int = 0
    """Transactions in either direction that did not fail."""
    first_activity_ts: int | None = None
    """Unix seconds of the earliest row of any kind, or None without rows."""
    last_activity_ts: int | None = None
    account_age_days: int = 0
    """Whole days from the first activity to ``as_of``, or 0 without rows."""
    days_since_last_activity: int | None = None
    active_months: int = 0
    """Distinct UTC calendar months with at least one row of any kind."""
    activity_count: int = 0
    """Distinct transaction hashes across all row kinds."""
    activity_last_1d: int = 0
    """Distinct transaction hashes dated within 1 day before ``as_of``, likewise for 7, 30 and 90."""
    activity_last_7d: int = 0
    activity_last_30d: int = 0
    activity_last_90d: int = 0
    unique_counterparties: int = 0
    """Distinct addresses the wallet exchanged a transaction, internal transfer or token with."""
    outgoing_counterparties: int = 0
    """Distinct addresses the wallet sent a transaction or token to."""
    contracts_called: int = 0
    """Distinct ``to`` addresses of outgoing transactions that carry call data."""
    distinct_selectors: int = 0
    """Distinct 4-byte function selectors in outgoing call data."""
    known_protocols: tuple[str, ...] = ()
    """Sorted names of known protocols the wallet sent a successful transaction to."""
    token_transfer_count: int = 0
    distinct_tokens: int = 0
    """Distinct token contracts in token transfers of either direction."""
    distinct_tokens_sent: int = 0
    internal_tx_count: int = 0
    balance_wei: int | None = None
    total_value_in_wei: int = 0
    """ETH received in successful transactions and internal transfers."""
    total_value_out_wei: int = 0
    """ETH sent in successful transactions and internal transfers, excluding self-transfers."""
    max_tx_value_wei: int = 0
    capped_volume_wei: int = 0
    """Sum over successful ETH transfers in or out of min(value, 1 ETH)."""
    gas_spent_wei: int = 0
    """Sum of gasUsed x gasPrice over outgoing transactions, failed ones included."""
    skipped_rows: int = 0
    """Rows dropped because their timestamp is missing or not a number."""
    truncated_sources: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict: ints, strings, bools, None and lists of strings.

        Wei amounts become ETH decimal strings under ``*_eth`` keys.
        """
        return {
            "tx_count": self.tx_count,
            "outgoing_count": self.outgoing_count,
            "incoming_count": self.incoming_count,
            "self_transfer_count": self.self_transfer_count,
            "contract_creation_count": self.contract_creation_count,
            "failed_count": self.failed_count,
            "failed_permille": self.failed_permille,
            "successful_tx_count": self.successful_tx_count,
            "first_activity_ts": self.first_activity_ts,
            "last_activity_ts": self.last_activity_ts,
            "account_age_days": self.account_age_days,
            "days_since_last_activity": self.days_since_last_activity,
            "active_months": self.active_months,
            "activity_count": self.activity_count,
            "activity_last_1d": self.activity_last_1d,
            "activity_last_7d": self.activity_last_7d,
            "activity_last_30d": self.activity_last_30d,
            "activity_last_90d": self.activity_last_90d,
            "unique_counterparties": self.unique_counterparties,
            "outgoing_counterparties": self.outgoing_counterparties,
            "contracts_called": self.contracts_called,
            "distinct_selectors": self.distinct_selectors,
            "known_protocols": list(self.known_protocols),
            "token_transfer_count": self.token_transfer_count,
            "distinct_tokens": self.distinct_tokens,
            "distinct_tokens_sent": self.distinct_tokens_sent,
            "internal_tx_count": self.internal_tx_count,
            "balance_eth": None if self.balance_wei is None else format_eth(self.balance_wei),
            "total_value_in_eth": format_eth(self.total_value_in_wei),
            "total_value_out_eth": format_eth(self.total_value_out_wei),
            "max_tx_value_eth": format_eth(self.max_tx_value_wei),
            "capped_volume_eth": format_eth(self.capped_volume_wei),
            "gas_spent_eth": format_eth(self.gas_spent_wei),
            "skipped_rows": self.skipped_rows,
            "truncated_sources": list(self.truncated_sources),
        }


def format_eth(wei: int) -> str:
    """Format a wei amount as an exact ETH decimal string without trailing zeros.

    >>> format_eth(1_500_000_000_000_000_000)
    '1.5'
    >>> format_eth(1)
    '0.000000000000000001'
    """
    sign = "-" if wei < 0 else ""
    whole, fraction = divmod(abs(wei), WEI_PER_ETH)
    if fraction == 0:
        return f"{sign}{whole}"

    digits = f"{fraction:018d}".rstrip("0")
    return f"{sign}{whole}.{digits}"


def parse_uint(value: object) -> int | None:
    """Parse a non-negative decimal number as the explorer sends it, or return None.

    Accepts ints and strings of ASCII digits only: "", "0x1f", "-1" and "1.5"
    return None.
    """
    # Exact type checks first: this runs several times per row.
    if type(value) is str:
        return int(value) if value.isdigit() and value.isascii() else None
    if type(value) is int:
        return value if value >= 0 else None
    return None


def extract_features(history: WalletHistory, as_of_ms: int) -> Features:
    """Extract the features of ``history`` from the rows dated at or before ``as_of_ms``.

    ``as_of_ms`` is the request's timestamp in Unix milliseconds. Rows dated
    later are ignored, so the result depends only on data up to ``as_of``.
    """
    scan = _Scan(history.address.lower(), as_of_ms // 1000)

    scan.transactions(scan.dated(history.transactions, _TransactionDuplicates()))
    scan.internal_transactions(scan.dated(history.internal_transactions, _TransferDuplicates()))
    scan.token_transfers(scan.dated(history.token_transfers, _TransferDuplicates()))

    return scan.features(history.chain_id, history.balance_wei, history.truncated)


class _Scan:
    """Running counts over the rows of one wallet, filled one row kind at a time.

    Wallets can have tens of thousands of rows, so the per-row loops keep
    their counts in local variables. Checks that depend only on an address
    (is it a counterparty, is it a known protocol) wait for ``features``,
    which runs each once per distinct address.
    """

    def __init__(self, wallet: str, as_of_s: int) -> None:
        self.wallet = wallet
        self.as_of_s = as_of_s

        # Keys are Features field names, so the dict is passed to Features as it is.
        self.counts: dict[str, int] = dict.fromkeys(_COUNT_FIELDS, 0)
        self.timestamps: list[int] = []
        self.activity: dict[str, int] = {}
        self.unhashed_activity: list[int] = []

        # Candidates may include non-addresses such as "GENESIS" and the
        # wallet itself, which ``features`` drops.
        self.counterparty_candidates: set[str] = set()
        self.outgoing_candidates: set[str] = set()

        self.contracts: set[str] = set()
        self.successful_calls: set[str] = set()
        self.selectors: set[str] = set()
        self.tokens: set[str] = set()
        self.tokens_sent: set[str] = set()

    # Rows

    def dated(self, rows: Iterable[Row], duplicates: _Duplicates) -> list[Row]:
        """Return the rows dated at or before ``as_of``, without duplicates, and record their activity.

        Duplicates are dropped before the timestamp is read, so of two copies
        the first one decides, even when its timestamp is bad.
        """
        as_of_s = self.as_of_s
        is_repeat = duplicates.is_repeat
        record_time = self.timestamps.append
        record_hashed = self.activity.setdefault
        record_unhashed = self.unhashed_activity.append
        kept: list[Row] = []
        skipped = 0

        for row in rows:
            if not isinstance(row, dict):
                skipped += 1
                continue

            tx_hash = row.get("hash")
            hashed = isinstance(tx_hash, str) and tx_hash != ""
            if hashed:
                tx_hash = tx_hash.lower()
                if is_repeat(row, tx_hash):
                    continue

            timestamp = parse_uint(row.get("timeStamp"))
            if timestamp is None:
                skipped += 1
                continue
            if timestamp > as_of_s:
                continue

            record_time(timestamp)
            if hashed:
                # Keep the first sighting, because all rows of one transaction share a timestamp.
                record_hashed(tx_hash, timestamp)
            else:
                record_unhashed(timestamp)
            kept.append(row)

        self.counts["skipped_rows"] += skipped
        return kept

    # Row kinds

    def transactions(self, rows: list[Row]) -> None:
        """Count normal transactions and pass those sent by the wallet to ``_sent_transactions``."""
        wallet = self.wallet
        add_candidate = self.counterparty_candidates.add
        sent: list[tuple[Row, int, bool]] = []
        successful = incoming = max_value = value_in = capped_in = 0

        for row in rows:
            get = row.get
            failed = get("isError") == "1" or get("txreceipt_status") == "0"
            # A failed transaction moves no value, so its value is never read.
            value = 0 if failed else _uint_or_zero(get("value"))
            if not failed:
                successful += 1
                if value > max_value:
                    max_value = value

            sender = _lower(get("from"))
            if sender == wallet:
                sent.append((row, value, failed))
                continue

            if _lower(get("to")) == wallet:
                incoming += 1
                add_candidate(sender)
                value_in += value
                capped_in += value if value < _CAP else _CAP

        counts = self.counts
        counts["tx_count"] += len(rows)
        counts["successful_tx_count"] += successful
        counts["max_tx_value_wei"] = max(counts["max_tx_value_wei"], max_value)
        counts["incoming_count"] += incoming
        counts["total_value_in_wei"] += value_in
        counts["capped_volume_wei"] += capped_in
        self._sent_transactions(sent)

    def _sent_transactions(self, sent: list[tuple[Row, int, bool]]) -> None:
        """Count transactions from the wallet, given as (row, value, failed) with value 0 when failed."""
        wallet = self.wallet
        add_candidate, add_outgoing = self.counterparty_candidates.add, self.outgoing_candidates.add
        gas = failures = self_transfers = creations = value_out = capped_out = 0

        for row, value, failed in sent:
            get = row.get
            gas += _uint_or_zero(get("gasUsed")) * _uint_or_zero(get("gasPrice"))
            if failed:
                failures += 1

            recipient = _lower(get("to"))
            if recipient == wallet:
                self_transfers += 1
                continue
            if not recipient:
                # Contract creation: "to" is empty and the new contract is in contractAddress.
                creations += 1
                created = _lower(get("contractAddress"))
                add_candidate(created)
                add_outgoing(created)
                continue

            add_candidate(recipient)
            add_outgoing(recipient)
            value_out += value
            capped_out += value if value < _CAP else _CAP
            call_data = get("input")
            if isinstance(call_data, str) and call_data not in ("", "0x"):
                self._record_call(call_data, recipient, failed)

        counts = self.counts
        counts["outgoing_count"] += len(sent)
        counts["gas_spent_wei"] += gas
        counts["failed_count"] += failures
        counts["self_transfer_count"] += self_transfers
        counts["contract_creation_count"] += creations
        counts["total_value_out_wei"] += value_out
        counts["capped_volume_wei"] += capped_out

    def _record_call(self, call_data: str, contract: str, failed: bool) -> None:
        self.contracts.add(contract)

        # Blockscout may leave methodId as "0x" for real calls, so the selector
        # comes from the call data itself.
        if len(call_data) >= _SELECTOR_CHARS:
            self.selectors.add(call_data[:_SELECTOR_CHARS].lower())

        if not failed:
            self.successful_calls.add(contract)

    def internal_transactions(self, rows: list[Row]) -> None:
        wallet = self.wallet
        add_candidate, add_outgoing = self.counterparty_candidates.add, self.outgoing_candidates.add
        value_in = value_out = capped = 0

        for row in rows:
            get = row.get
            sender, recipient = _lower(get("from")), _lower(get("to"))
            if sender == wallet and recipient != wallet:
                outgoing = True
                add_candidate(recipient)
                add_outgoing(recipient)
            elif recipient == wallet and sender != wallet:
                outgoing = False
                add_candidate(sender)
            else:
                continue

            if get("isError") == "1" or get("txreceipt_status") == "0":
                continue

            value = _uint_or_zero(get("value"))
            capped += value if value < _CAP else _CAP
            if outgoing:
                value_out += value
            else:
                value_in += value

        counts = self.counts
        counts["internal_tx_count"] += len(rows)
        counts["total_value_in_wei"] += value_in
        counts["total_value_out_wei"] += value_out
        counts["capped_volume_wei"] += capped

    def token_transfers(self, rows: list[Row]) -> None:
        wallet = self.wallet
        add_candidate, add_outgoing = self.counterparty_candidates.add, self.outgoing_candidates.add
        add_token, add_token_sent = self.tokens.add, self.tokens_sent.add

        for row in rows:
            get = row.get
            sender, recipient = _lower(get("from")), _lower(get("to"))
            token = _lower(get("contractAddress"))

            add_token(token)
            if sender == wallet:
                add_candidate(recipient)
                add_outgoing(recipient)
                add_token_sent(token)
            elif recipient == wallet:
                add_candidate(sender)

        # A row without a token contract added "", which names no token.
        self.tokens.discard("")
        self.tokens_sent.discard("")
        self.counts["token_transfer_count"] += len(rows)

    # Result

    def features(self, chain_id: str, balance_wei: int | None, truncated: tuple[str, ...]) -> Features:
        counts = self.counts
        outgoing = counts["outgoing_count"]
        failed_permille = counts["failed_count"] * 1000 // outgoing if outgoing else 0
        activity_times = [*self.activity.values(), *self.unhashed_activity]

        counterparties = {address for address in self.counterparty_candidates if self._is_counterparty(address)}
        protocols = {protocol_at(address, chain_id) for address in self.successful_calls} - {None}

        return Features(
            **counts,
            failed_permille=failed_permille,
            **self._time_features(),
            activity_count=len(activity_times),
            **_recent_counts(activity_times, self.as_of_s),
            unique_counterparties=len(counterparties),
            outgoing_counterparties=len(self.outgoing_candidates & counterparties),
            contracts_called=len(self.contracts),
            distinct_selectors=len(self.selectors),
            known_protocols=tuple(sorted(protocols)),
            distinct_tokens=len(self.tokens),
            distinct_tokens_sent=len(self.tokens_sent),
            balance_wei=balance_wei,
            truncated_sources=tuple(truncated),
        )

    def _is_counterparty(self, address: str) -> bool:
        # Pseudo-senders such as "GENESIS" are not addresses and are not counted.
        return address != self.wallet and _ADDRESS.fullmatch(address) is not None

    def _time_features(self) -> dict[str, Any]:
        if not self.timestamps:
            return {}

        first, last = min(self.timestamps), max(self.timestamps)
        return {
            "first_activity_ts": first,
            "last_activity_ts": last,
            "account_age_days": (self.as_of_s - first) // SECONDS_PER_DAY,
            "days_since_last_activity": (self.as_of_s - last) // SECONDS_PER_DAY,
            "active_months": _count_months(self.timestamps),
        }


# Features fields that the scan adds up row by row.
_COUNT_FIELDS = (
    "tx_count", "outgoing_count", "incoming_count", "self_transfer_count", "contract_creation_count",
    "failed_count", "successful_tx_count", "token_transfer_count", "internal_tx_count", "skipped_rows",
    "total_value_in_wei", "total_value_out_wei", "max_tx_value_wei", "capped_volume_wei", "gas_spent_wei",
)


def _recent_counts(timestamps: list[int], as_of_s: int) -> dict[str, int]:
    """Count timestamps within each window (as_of - days, as_of]."""
    ordered = sorted(timestamps)
    return {
        f"activity_last_{days}d": len(ordered) - bisect_right(ordered, as_of_s - days * SECONDS_PER_DAY)
        for days in RECENT_WINDOWS_DAYS
    }


def _count_months(timestamps: list[int]) -> int:
    # Rows cluster on few days, so converting each distinct day once keeps this cheap.
    days = {timestamp // SECONDS_PER_DAY for timestamp in timestamps}
    months = set()
    for day in days:
        moment = datetime.fromtimestamp(day * SECONDS_PER_DAY, tz=timezone.utc)
        months.add((moment.year, moment.month))
    return len(months)


# Duplicates


class _Duplicates(Protocol):
    def is_repeat(self, row: Row, tx_hash: str) -> bool:
        """Tell whether ``row``, whose lower-case hash is ``tx_hash``, repeats an earlier row."""


class _TransactionDuplicates:
    """Normal transactions: two rows with the same hash are the same transaction."""

    def __init__(self) -> None:
        self.hashes: set[str] = set()

    def is_repeat(self, row: Row, tx_hash: str) -> bool:
        if tx_hash in self.hashes:
            return True

        self.hashes.add(tx_hash)
        return False


class _TransferDuplicates:
    """Internal and token transfers: two rows are the same transfer when all key fields match.

    One transaction can hold several transfers, so the hash alone is not
    enough. Most hashes occur once per row kind, so the full key of a row is
    built only when a second row with its hash arrives.
    """

    def __init__(self) -> None:
        # The first row of each hash, or None once its key is in ``keys``.
        self.first_rows: dict[str, Row | None] = {}
        self.keys: set[tuple[str, ...]] = set()

    def is_repeat(self, row: Row, tx_hash: str) -> bool:
        if tx_hash not in self.first_rows:
            self.first_rows[tx_hash] = row
            return False

        first = self.first_rows[tx_hash]
        if first is not None:
            self.keys.add(_transfer_key(first))
            self.first_rows[tx_hash] = None

        key = _transfer_key(row)
        if key in self.keys:
            return True

        self.keys.add(key)
        return False


_TRANSFER_KEY_FIELDS = ("hash", "logIndex", "traceId", "contractAddress", "from", "to", "value", "tokenID")


def _transfer_key(row: Row) -> tuple[str, ...]:
    # Every field goes through str() and lower(), so a missing field (None)
    # and the text "None" give the same key part.
    return tuple(map(str.lower, map(str, map(row.get, _TRANSFER_KEY_FIELDS))))


# Parsing


def _lower(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


def _uint_or_zero(value: object) -> int:
    # Same result as ``parse_uint(value) or 0``. Digit strings, the common
    # case, skip the second call because this runs several times per row.
    if type(value) is str and value.isdigit() and value.isascii():
        return int(value)
    return parse_uint(value) or 0
