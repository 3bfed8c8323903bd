"""The scoring pipeline: explorer data, features, rubric, model, signature."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .address import canonical_address
from .config import Settings
from .errors import ModelError
from .explorer import ExplorerClient
from .features import extract_features
from .llm import OllamaAssessor, apply_band
from .scoring import RubricScore, score_rubric
from .signing import OracleKey, sign_score

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class SignedScore:
    """One signed score. Only score, wallet_address and timestamp_ms are signed."""

    score: int
    wallet_address: str
    timestamp_ms: int
    signature: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "wallet_address": self.wallet_address,
            "timestamp_ms": self.timestamp_ms,
            "signature": self.signature,
            "metadata": self.metadata,
        }


class ScoreService:
    """Runs the whole pipeline for one address per call."""

    def __init__(
        self,
        settings: Settings,
        key: OracleKey,
        explorer: ExplorerClient,
        assessor: OllamaAssessor | None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._settings = settings
        self._key = key
        self._explorer = explorer
        self._assessor = assessor
        self._clock = clock

    @property
    def public_key_hex(self) -> str:
        return self._key.public_key_hex

    async def score(self, address_text: str) -> SignedScore:
        """Score and sign one wallet.

        Raises ``InvalidAddressError`` for a bad address and an ``UpstreamError``
        when any configured explorer source fails, so nothing is signed from
        incomplete data. A failing model never fails the request: the rubric
        score is signed instead and the metadata gives the reason.
        """
        address = canonical_address(address_text)
        started = time.monotonic()
        as_of = self._clock()

        history = await self._explorer.fetch_history(address)
        features = extract_features(history, as_of)
        rubric = score_rubric(features)
        deadline_s = self._settings.score_deadline_s - (time.monotonic() - started)
        final, model_metadata = await self._assess(address, features, rubric, deadline_s)

        signature = sign_score(self._key, score=final, wallet_address=address, timestamp_ms=as_of)
        metadata = {
            "rubric_version": rubric.version,
            "rubric_score": rubric.total,
            "dimensions": dict(rubric.dimensions),
            "features": features.as_dict(),
            "sources": list(history.sources),
            "chain_id": history.chain_id or None,
            "truncated_sources": list(history.truncated),
            "as_of": as_of,
            **model_metadata,
        }
        return SignedScore(final, address, as_of, signature, metadata)

    async def _assess(
        self, address: str, features: Any, rubric: RubricScore, deadline_s: float
    ) -> tuple[int, dict[str, Any]]:
        if self._assessor is None:
            return rubric.total, {"method": "rubric"}

        band = self._settings.score_llm_band
        try:
            assessment = await self._assessor.assess(
                address=address, features=features, rubric=rubric, deadline_s=max(deadline_s, 0.0)
            )
        except ModelError as error:
            log.warning("model assessment failed for %s, signing the rubric score: %s", address, error)
            return rubric.total, {
                "method": "rubric_fallback",
                "fallback_reason": error.reason,
                "fallback_detail": str(error),
                "model": self._assessor.model,
                "band": band,
            }

        final = apply_band(rubric.total, assessment.model_score, band)
        return final, {
            "method": "llm",
            "model_score": assessment.model_score,
            "band": band,
            "model": assessment.model,
            "prompt_version": assessment.prompt_version,
            "assessment": assessment.as_dict(),
        }
