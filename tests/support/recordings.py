"""Wallet histories built from the recorded explorer answers in tests/data/wallets.

Each recording holds real Etherscan answers (``interactions[].body.result``)
keyed by request URL. These helpers find the answer for one address and
account action and build the ``WalletHistory`` the explorer client would
return, without any network.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from evm_score_oracle.explorer import WalletHistory

RECORDINGS_DIR = Path(__file__).resolve().parent.parent / "data" / "wallets"

ROW_ACTIONS = {
    "txlist": "transactions",
    "txlistinternal": "internal_transactions",
    "tokentx": "token_transfers",
}

# Wallets with a full recorded history, by role in the tests.
RETAIL_DEFI = "0xc38b0528097b8076048bedf4330644f068cec2e6"
NO_TRANSACTIONS = "0x8b99407a4395714b706415277f17b4d549608afe"
DEFI_BRIDGE = "0xb8553d9ee35dd23bb96fbd679e651b929821969b"
DORMANT_11TX = "0xafb7ed3bebe50e0b62fa862faba93e7a46e59ca7"
DORMANT_3TX = "0x4193122032b38236825bba166f42e54fc3f4a1ee"
BALANCE_ONLY = "0x3c69bc9b9681683890ad82953fe67d13cd91d5ee"
TOKEN_ONLY = "0x014cd0535b2ea668150a681524392b7633c8681c"
EMPTY_ZERO_BALANCE = "0x6c66149e65c517605e0a2e4f707550ca342f9c1b"


@cache
def _interactions() -> tuple[tuple[dict[str, str], Any], ...]:
    found = []
    for path in sorted(RECORDINGS_DIR.glob("*.json")):
        recording = json.loads(path.read_text())
        for interaction in recording["interactions"]:
            query = {name: values[0] for name, values in parse_qs(urlsplit(interaction["url"]).query).items()}
            found.append((query, interaction["body"]))
    return tuple(found)


def recorded_result(address: str, action: str) -> Any:
    """Return the first recorded ``result`` for ``address`` and ``action``.

    The first recording is the full-range query where a file also holds a
    narrower re-fetch. Raises ``LookupError`` when nothing was recorded.
    """
    for query, body in _interactions():
        if query.get("action") == action and query.get("address", "").lower() == address.lower():
            return body["result"]
    raise LookupError(f"no recorded {action!r} answer for {address}: see {RECORDINGS_DIR}")


def recorded_rows(address: str, action: str) -> tuple[dict[str, Any], ...]:
    """Return the recorded rows for a list action; "No transactions found" gives ()."""
    result = recorded_result(address, action)
    if not isinstance(result, list):
        raise LookupError(f"recorded {action!r} answer for {address} is not a row list: {result!r}")
    return tuple(result)


def recorded_history(address: str, sources: tuple[str, ...] = ("txlist",)) -> WalletHistory:
    """Build the WalletHistory for ``address`` from the recordings of ``sources``."""
    rows = {field: () for field in ROW_ACTIONS.values()}
    balance_wei = None

    for source in sources:
        if source == "balance":
            balance_wei = int(recorded_result(address, "balance"))
        else:
            rows[ROW_ACTIONS[source]] = recorded_rows(address, source)

    return WalletHistory(
        address=address.lower(),
        chain_id="1",
        sources=sources,
        balance_wei=balance_wei,
        **rows,
    )
