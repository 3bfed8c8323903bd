"""Wallet history from an Etherscan-compatible explorer API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
