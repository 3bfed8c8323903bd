"""The reproducible rubric score: five dimensions of 0-200 points, total 0-1000.

Every curve is the saturating fraction ``max * x / (x + half)`` computed with
integer floor division, so the score is exact and identical on every platform.
``half`` is the input at which a curve gives half its points. Each input
grows the score less with every step, so no single transaction causes a jump.
docs/scoring.md gives the formula, the constants and a worked example.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from .features import WEI_PER_ETH, Features

# Part of every signed score's metadata: change it whenever a formula or constant changes.
RUBRIC_VERSION = "rubric-v1"

DIMENSION_MAX = MappingProxyType(
    {"activity": 200, "maturity": 200, "diversity": 200, "risk": 200, "value": 200}
)

# Failed-transaction share is smoothed as if every wallet had also sent this
# many successful transactions, so one failure in a tiny wallet is not 100 %.
FAILED_SHARE_PRIOR_TXS = 10


@dataclass(frozen=True)
class RubricScore:
    """The rubric's total and its points per dimension."""

    total: int
    """0..1000, the sum of ``dimensions``."""
    dimensions: dict[str, int]
    """Points for activity, maturity, diversity, risk and value, each 0..200."""
    version: str = RUBRIC_VERSION

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "dimensions": dict(self.dimensions), "version": self.version}


def saturate(x: int, maximum: int, half: int) -> int:
    """Return ``floor(maximum * x / (x + half))`` for x >= 0; negative x counts as 0.

    >>> saturate(0, 200, 10), saturate(10, 200, 10), saturate(30, 200, 10)
    (0, 100, 150)
    """
    x = max(x, 0)
    return maximum * x // (x + half)


def score_rubric(features: Features) -> RubricScore:
    """Score ``features`` with rubric-v1; a pure function of the features."""
    dimensions = {
        "activity": _activity(features),
        "maturity": _maturity(features),
        "diversity": _diversity(features),
        "risk": _risk(features),
        "value": _value(features),
    }
    return RubricScore(total=sum(dimensions.values()), dimensions=dimensions)


def _activity(features: Features) -> int:
    # Only sent transactions count in full: anyone can send to a wallet for free.
    sent = saturate(features.outgoing_count, 140, 20)
    recent = saturate(features.activity_last_90d, 60, 10)
    return sent + recent


def _maturity(features: Features) -> int:
    age = saturate(features.account_age_days, 140, 365)
    months = saturate(features.active_months, 60, 12)
    return age + months


def _diversity(features: Features) -> int:
    # Inputs are what the wallet chose to do, not what others sent it, so
    # airdropped spam tokens and dust senders add nothing.
    counterparties = saturate(features.outgoing_counterparties, 60, 15)
    contracts = saturate(features.contracts_called, 50, 8)
    protocols = saturate(len(features.known_protocols), 60, 3)
    tokens = saturate(features.distinct_tokens_sent, 30, 5)
    return counterparties + contracts + protocols + tokens


def _risk(features: Features) -> int:
    """Start from 200 and subtract penalties for failures, youth and thin history."""
    failed_share = failed_share_permille(features)
    failures = saturate(failed_share, 100, 300)

    # Falls from 60 points at age 0 to 30 at 30 days and about 5 at one year.
    youth = 60 * 30 // (max(features.account_age_days, 0) + 30)

    # Falls from 40 points with no successful transaction to 20 at five.
    thin_history = 40 * 5 // (max(features.successful_tx_count, 0) + 5)

    return max(0, 200 - failures - youth - thin_history)


def failed_share_permille(features: Features) -> int:
    """Return failed outgoing transactions per 1000, smoothed by ``FAILED_SHARE_PRIOR_TXS``."""
    failed = max(features.failed_count, 0)
    sent = max(features.outgoing_count, failed)
    return failed * 1000 // (sent + FAILED_SHARE_PRIOR_TXS)


def _value(features: Features) -> int:
    balance = saturate(features.balance_wei or 0, 100, WEI_PER_ETH)
    volume = saturate(features.capped_volume_wei, 100, 5 * WEI_PER_ETH)
    return balance + volume
