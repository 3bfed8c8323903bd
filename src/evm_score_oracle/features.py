"""Deterministic wallet features from explorer rows.

``extract_features`` is a pure function of the rows dated at or before
``as_of`` and of the balance, so the same history always gives the same
features. It makes one pass over each row kind, so its cost is linear in the
number of rows.

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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .explorer import Row, WalletHistory
from .protocols import protocol_at

WEI_PER_ETH = 10**18
SECONDS_PER_DAY = 86_400
RECENT_WINDOWS_DAYS = (1, 7, 30, 90)

# Per-transaction cap for the capped volume: one large transfer cannot
# dominate the value that a wallet has moved over its lifetime.
VOLUME_CAP_PER_TX_WEI = WEI_PER_ETH

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
    scan = _Scan(history.address.lower(), as_of_ms // 1000, history.chain_id)

    scan.transactions(_unique(history.transactions, _transaction_key))
    scan.internal_transactions(_unique(history.internal_transactions, _transfer_key))
    scan.token_transfers(_unique(history.token_transfers, _transfer_key))

    return scan.features(history.balance_wei, history.truncated)


class _Scan:
    """Running counts over the rows of one wallet, filled in one pass per row kind."""

    def __init__(self, wallet: str, as_of_s: int, chain_id: str) -> None:
        self.wallet = wallet
        self.as_of_s = as_of_s
        self.chain_id = chain_id

        # Keys are Features field names; fields never counted keep their default 0.
        self.counts: Counter[str] = Counter()
        self.amounts: Counter[str] = Counter()
        self.timestamps: list[int] = []
        self.activity: dict[str, int] = {}
        self.unhashed_activity: list[int] = []
        self.counterparties: set[str] = set()
        self.outgoing_counterparties: set[str] = set()
        self.contracts: set[str] = set()
        self.selectors: set[str] = set()
        self.protocols: set[str] = set()
        self.tokens: set[str] = set()
        self.tokens_sent: set[str] = set()

    # Row kinds

    def transactions(self, rows: Iterable[Row]) -> None:
        for row, timestamp in self._dated(rows):
            sender, recipient = _address(row, "from"), _address(row, "to")
            failed = _failed(row)
            value = parse_uint(row.get("value")) or 0

            self.counts["tx_count"] += 1
            if not failed:
                self.counts["successful_tx_count"] += 1

            if sender == self.wallet:
                self._outgoing_transaction(row, recipient, value, failed)
            elif recipient == self.wallet:
                self._incoming_transfer(sender, value, failed)
                self.counts["incoming_count"] += 1

            if not failed:
                self.amounts["max_tx_value_wei"] = max(self.amounts["max_tx_value_wei"], value)

    def internal_transactions(self, rows: Iterable[Row]) -> None:
        for row, _timestamp in self._dated(rows):
            sender, recipient = _address(row, "from"), _address(row, "to")
            failed = _failed(row)
            value = parse_uint(row.get("value")) or 0

            self.counts["internal_tx_count"] += 1
            if sender == self.wallet and recipient != self.wallet:
                self._outgoing_transfer(recipient, value, failed)
            elif recipient == self.wallet and sender != self.wallet:
                self._incoming_transfer(sender, value, failed)

    def token_transfers(self, rows: Iterable[Row]) -> None:
        for row, _timestamp in self._dated(rows):
            sender, recipient = _address(row, "from"), _address(row, "to")
            token = _address(row, "contractAddress")

            self.counts["token_transfer_count"] += 1
            if token:
                self.tokens.add(token)

            if sender == self.wallet:
                self._add_counterparty(recipient, outgoing=True)
                if token:
                    self.tokens_sent.add(token)
            elif recipient == self.wallet:
                self._add_counterparty(sender, outgoing=False)

    # Directions

    def _outgoing_transaction(self, row: Row, recipient: str, value: int, failed: bool) -> None:
        self.counts["outgoing_count"] += 1
        self.amounts["gas_spent_wei"] += _gas_fee(row)
        if failed:
            self.counts["failed_count"] += 1

        if recipient == self.wallet:
            self.counts["self_transfer_count"] += 1
            return

        if not recipient:
            # Contract creation: "to" is empty and the new contract is in contractAddress.
            self.counts["contract_creation_count"] += 1
            self._add_counterparty(_address(row, "contractAddress"), outgoing=True)
            return

        self._outgoing_transfer(recipient, value, failed)
        self._outgoing_call(row, recipient, failed)

    def _outgoing_call(self, row: Row, recipient: str, failed: bool) -> None:
        call_data = row.get("input")
        if not isinstance(call_data, str) or call_data in ("", "0x"):
            return

        # Blockscout may leave methodId as "0x" for real calls, so the selector
        # comes from the call data itself.
        self.contracts.add(recipient)
        if len(call_data) >= _SELECTOR_CHARS:
            self.selectors.add(call_data[:_SELECTOR_CHARS].lower())

        protocol = protocol_at(recipient, self.chain_id)
        if protocol is not None and not failed:
            self.protocols.add(protocol)

    def _outgoing_transfer(self, recipient: str, value: int, failed: bool) -> None:
        self._add_counterparty(recipient, outgoing=True)
        if failed:
            return

        self.amounts["total_value_out_wei"] += value
        self.amounts["capped_volume_wei"] += min(value, VOLUME_CAP_PER_TX_WEI)

    def _incoming_transfer(self, sender: str, value: int, failed: bool) -> None:
        self._add_counterparty(sender, outgoing=False)
        if failed:
            return

        self.amounts["total_value_in_wei"] += value
        self.amounts["capped_volume_wei"] += min(value, VOLUME_CAP_PER_TX_WEI)

    def _add_counterparty(self, address: str, *, outgoing: bool) -> None:
        # Pseudo-senders such as "GENESIS" are not addresses and are not counted.
        known = address in self.counterparties
        if not known and (not _ADDRESS.fullmatch(address) or address == self.wallet):
            return

        self.counterparties.add(address)
        if outgoing:
            self.outgoing_counterparties.add(address)

    # Time

    def _dated(self, rows: Iterable[Row]) -> Iterator[tuple[Row, int]]:
        """Yield rows dated at or before ``as_of`` and record their activity."""
        for row in rows:
            timestamp = parse_uint(row.get("timeStamp")) if isinstance(row, dict) else None
            if timestamp is None:
                self.counts["skipped_rows"] += 1
                continue
            if timestamp > self.as_of_s:
                continue

            self._record_activity(row, timestamp)
            yield row, timestamp

    def _record_activity(self, row: Row, timestamp: int) -> None:
        self.timestamps.append(timestamp)
        tx_hash = row.get("hash")
        if isinstance(tx_hash, str) and tx_hash:
            # Keep the earliest sighting; all rows of one transaction share a timestamp.
            self.activity.setdefault(tx_hash.lower(), timestamp)
        else:
            self.unhashed_activity.append(timestamp)

    # Result

    def features(self, balance_wei: int | None, truncated: tuple[str, ...]) -> Features:
        outgoing = self.counts["outgoing_count"]
        failed_permille = self.counts["failed_count"] * 1000 // outgoing if outgoing else 0
        activity_times = [*self.activity.values(), *self.unhashed_activity]

        return Features(
            **self.counts,
            **self.amounts,
            failed_permille=failed_permille,
            **self._time_features(),
            activity_count=len(activity_times),
            **_recent_counts(activity_times, self.as_of_s),
            unique_counterparties=len(self.counterparties),
            outgoing_counterparties=len(self.outgoing_counterparties),
            contracts_called=len(self.contracts),
            distinct_selectors=len(self.selectors),
            known_protocols=tuple(sorted(self.protocols)),
            distinct_tokens=len(self.tokens),
            distinct_tokens_sent=len(self.tokens_sent),
            balance_wei=balance_wei,
            truncated_sources=tuple(truncated),
        )

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


def _unique(rows: Iterable[Row], key_of: Callable[[Row], tuple | None]) -> Iterator[Row]:
    seen: set[tuple] = set()
    for row in rows:
        key = key_of(row) if isinstance(row, dict) else None
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        yield row


def _transaction_key(row: Row) -> tuple | None:
    tx_hash = row.get("hash")
    return (tx_hash.lower(),) if isinstance(tx_hash, str) and tx_hash else None


_TRANSFER_KEY_FIELDS = ("hash", "logIndex", "traceId", "contractAddress", "from", "to", "value", "tokenID")


def _transfer_key(row: Row) -> tuple | None:
    # One transaction can hold several internal or token transfers, so the
    # hash alone is not enough to call two rows duplicates.
    if _transaction_key(row) is None:
        return None
    return tuple(str(value).lower() for value in map(row.get, _TRANSFER_KEY_FIELDS))


def _address(row: Row, key: str) -> str:
    value = row.get(key)
    return value.lower() if isinstance(value, str) else ""


def _failed(row: Row) -> bool:
    return row.get("isError") == "1" or row.get("txreceipt_status") == "0"


def _gas_fee(row: Row) -> int:
    return (parse_uint(row.get("gasUsed")) or 0) * (parse_uint(row.get("gasPrice")) or 0)
