"""The local language model (Ollama): health probe, warm-up and wallet assessment.

The model gives one 0-100 assessment per rubric dimension. ``apply_band`` keeps
the signed score within a fixed distance of the rubric score, so the model can
adjust the score but never decide it alone. Every way the model can fail ends
in ``ModelError``, and the caller then signs the rubric score instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx
import ollama
from pydantic import ValidationError

from .config import Settings
from .errors import BusyError, ModelError
from .protocols import KNOWN_CONTRACTS
from .prompt import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    ModelAnswer,
    answer_schema,
    build_prompt,
    prompt_facts,
    weighted_score,
)

__all__ = ["PROMPT_VERSION", "Assessment", "HealthProbe", "OllamaAssessor", "apply_band", "derive_seed"]

log = logging.getLogger(__name__)

# Keep the model in memory between requests: loading it takes longer than scoring.
KEEP_ALIVE = "24h"

# The first attempt samples almost greedily. Retries use a new seed and a higher
# temperature, because at 0.1 a new seed rarely changes the output at all.
TEMPERATURES = (0.1, 0.4, 0.7, 0.8, 0.9, 1.0)

# Retry-After for a busy oracle before any model call has been timed.
DEFAULT_CALL_S = 5.0

# Seconds a caller waits past its deadline for the shared model call to report.
DEADLINE_GRACE_S = 1.0

# Failures a retry with a new seed can fix; the others end the assessment.
RETRYABLE = frozenset({"invalid_json", "schema_violation", "truncated"})

_CANONICAL_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


class FeaturesLike(Protocol):
    def as_dict(self) -> dict: ...


class RubricLike(Protocol):
    total: int
    dimensions: dict[str, int]


@dataclass(frozen=True)
class HealthProbe:
    """Whether Ollama answered in time and lists the configured model."""

    connected: bool
    detail: str | None = None


@dataclass(frozen=True)
class Assessment:
    """A validated model answer and the numbers needed to audit it."""

    model_score: int
    """The model's own score, 0..1000, before ``apply_band``."""
    dimensions: dict[str, int]
    """The model's 0-100 assessment per rubric dimension."""
    reasoning: str
    risk_factors: tuple[str, ...]
    strengths: tuple[str, ...]
    model: str
    prompt_version: str
    attempts: int
    """Model calls made, including the one that succeeded."""
    prompt_tokens: int | None
    output_tokens: int | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dimensions"] = dict(self.dimensions)
        data["risk_factors"] = list(self.risk_factors)
        data["strengths"] = list(self.strengths)
        return data


def apply_band(rubric_total: int, model_score: int, band: int) -> int:
    """Clamp the model's score to rubric +/- band and to 0..1000.

    A band of 1000 or more lets the model's score through unchanged.
    """
    if band < 0:
        raise ValueError(f"invalid band {band}: expected 0 to 1000")

    low = max(0, rubric_total - band)
    high = min(1000, rubric_total + band)
    return max(low, min(high, model_score))


def derive_seed(address: str, attempt: int, prompt_version: str = PROMPT_VERSION) -> int:
    """Derive the sampling seed from the canonical address, prompt version and attempt.

    The first 4 bytes of SHA-256, big-endian, so anyone can recompute it.
    """
    digest = hashlib.sha256(f"{prompt_version}:{address}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def protocol_labels() -> frozenset[str]:
    """Return the protocol names of the oracle's own contract table.

    These are the only strings from the features that may enter the prompt.
    """
    return frozenset(KNOWN_CONTRACTS.values())


class _AttemptFailed(Exception):
    """One model call gave no usable answer; ``reason`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OllamaAssessor:
    """Client for the local Ollama server, bound to one model."""

    def __init__(self, settings: Settings) -> None:
        self.model = settings.ollama_model
        self._settings = settings
        self._host = settings.ollama_host
        self._health_timeout_s = settings.ollama_health_timeout_s
        self._probe_client = ollama.AsyncClient(host=self._host, timeout=self._health_timeout_s)
        self._client = ollama.AsyncClient(host=self._host, timeout=settings.ollama_timeout_s)
        self._slots = asyncio.Semaphore(settings.ollama_max_concurrent)
        self._in_flight: dict[str, asyncio.Task[Assessment]] = {}
        self._typical_call_s = DEFAULT_CALL_S
        self._labels = protocol_labels()

    async def probe(self) -> HealthProbe:
        """Ask Ollama for its model list, within the health timeout.

        Never raises: every failure becomes a probe with ``connected`` false and
        a detail a person can act on.
        """
        started = time.monotonic()
        try:
            listing = await asyncio.wait_for(self._probe_client.list(), self._health_timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            return HealthProbe(False, f"ollama at {self._host} did not answer within {self._health_timeout_s:g} s")
        except (ConnectionError, httpx.TransportError):
            return HealthProbe(False, f"ollama at {self._host} is unreachable")
        except ollama.ResponseError as error:
            return HealthProbe(False, f"ollama at {self._host} answered HTTP {error.status_code}")
        except (ValueError, TypeError) as error:
            return HealthProbe(False, f"ollama at {self._host} sent an unexpected model list: {type(error).__name__}")
        finally:
            log.debug("ollama probe took %.0f ms", (time.monotonic() - started) * 1000)

        names = {model.model for model in listing.models}
        if self.model not in names:
            return HealthProbe(False, f"model {self.model} is not pulled yet")
        return HealthProbe(True)

    async def warm_up(self) -> None:
        """Load the model into memory with an empty prompt, logging the result.

        Never raises, so it can run as a background task at start-up.
        """
        if not self._settings.ollama_warm_up:
            log.info("ollama warm-up skipped: OLLAMA_WARM_UP is false")
            return

        started = time.monotonic()
        try:
            answer = await self._client.generate(model=self.model, prompt="", keep_alive=KEEP_ALIVE)
        except ollama.ResponseError as error:
            log.warning("ollama warm-up of %s failed: HTTP %s %s", self.model, error.status_code, error.error)
            return
        except (ConnectionError, httpx.HTTPError, TimeoutError, ValidationError) as error:
            log.warning("ollama warm-up of %s failed: %s", self.model, _describe(error))
            return

        elapsed_ms = (time.monotonic() - started) * 1000
        log.info("ollama warm-up of %s done in %.0f ms (done_reason=%s)", self.model, elapsed_ms, answer.done_reason)

    async def assess(self, *, address: str, features: FeaturesLike, rubric: RubricLike, deadline_s: float) -> Assessment:
        """Ask the model to assess one wallet, within ``deadline_s`` seconds.

        Identical requests in flight (same address, same prompt) share one model
        call. Raises ``BusyError`` when no model slot frees up before the
        deadline, and ``ModelError`` with a ``reason`` for every other failure.
        """
        if not _CANONICAL_ADDRESS.fullmatch(address):
            raise ValueError(f"invalid address {address[:50]!r}: expected the canonical lower-case 0x + 40 hex form")

        facts = prompt_facts(features.as_dict(), self._labels)
        prompt = build_prompt(facts, rubric.dimensions)
        key = hashlib.sha256(f"{address}\n{prompt}".encode()).hexdigest()
        deadline = time.monotonic() + deadline_s

        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._assess_in_slot(address, prompt, deadline))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        else:
            log.debug("joining the model call in flight for %s", address)

        # The task enforces the deadline itself; the grace period lets its own
        # error (BusyError, a timeout with the attempt count) reach the caller.
        try:
            return await asyncio.wait_for(asyncio.shield(task), deadline_s + DEADLINE_GRACE_S)
        except TimeoutError as error:
            raise ModelError(f"no model response for {address} within {deadline_s:g} s", reason="timeout") from error

    async def aclose(self) -> None:
        """Cancel model calls in flight and close the HTTP connections."""
        for task in list(self._in_flight.values()):
            task.cancel()
        await self._probe_client.close()
        await self._client.close()

    def _forget(self, key: str, task: asyncio.Task[Assessment]) -> None:
        self._in_flight.pop(key, None)
        # Mark the error as retrieved: every caller may have stopped waiting.
        if not task.cancelled():
            task.exception()

    async def _assess_in_slot(self, address: str, prompt: str, deadline: float) -> Assessment:
        await self._acquire_slot(deadline)
        try:
            return await self._assess_with_retries(address, prompt, deadline)
        finally:
            self._slots.release()

    async def _acquire_slot(self, deadline: float) -> None:
        wait_s = deadline - time.monotonic()
        try:
            await asyncio.wait_for(self._slots.acquire(), max(wait_s, 0.001))
        except TimeoutError as error:
            retry_after_s = max(1, math.ceil(self._typical_call_s))
            raise BusyError(
                f"all {self._settings.ollama_max_concurrent} model slots stayed busy for {max(wait_s, 0):.1f} s; "
                f"retry after {retry_after_s} s",
                retry_after_s=retry_after_s,
            ) from error

    async def _assess_with_retries(self, address: str, prompt: str, deadline: float) -> Assessment:
        attempts = 1 + self._settings.ollama_retries
        failure = _AttemptFailed("timeout", "the deadline passed before the first model call")

        for attempt in range(attempts):
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise ModelError(f"deadline passed after {attempt} model calls for {address}", reason="timeout")

            try:
                return await self._attempt(address, prompt, attempt, attempts, remaining_s)
            except _AttemptFailed as error:
                failure = error
                if error.reason not in RETRYABLE:
                    break

        raise ModelError(f"model {self.model} gave no usable assessment: {failure}", reason=failure.reason) from failure

    async def _attempt(self, address: str, prompt: str, attempt: int, attempts: int, remaining_s: float) -> Assessment:
        seed = derive_seed(address, attempt)
        started = time.monotonic()
        answer = None
        outcome = "ok"
        try:
            answer = await self._generate(prompt, seed, attempt, remaining_s)
            return self._parse(answer, attempt + 1)
        except _AttemptFailed as error:
            outcome = error.reason
            raise
        finally:
            elapsed_s = time.monotonic() - started
            self._typical_call_s = 0.8 * self._typical_call_s + 0.2 * elapsed_s
            log.info(
                "ollama generate attempt %d/%d seed=%d done_reason=%s eval_count=%s elapsed_ms=%.0f outcome=%s",
                attempt + 1,
                attempts,
                seed,
                getattr(answer, "done_reason", None),
                getattr(answer, "eval_count", None),
                elapsed_s * 1000,
                outcome,
            )

    async def _generate(self, prompt: str, seed: int, attempt: int, remaining_s: float) -> ollama.GenerateResponse:
        timeout_s = min(self._settings.ollama_timeout_s, remaining_s)
        options = {
            "seed": seed,
            "temperature": TEMPERATURES[min(attempt, len(TEMPERATURES) - 1)],
            "num_predict": self._settings.ollama_num_predict,
        }
        request = self._client.generate(
            model=self.model,
            prompt=prompt,
            system=SYSTEM_PROMPT,
            format=answer_schema(),
            options=options,
            keep_alive=KEEP_ALIVE,
            stream=False,
        )
        try:
            return await asyncio.wait_for(request, timeout_s)
        except (TimeoutError, httpx.TimeoutException) as error:
            raise _AttemptFailed("timeout", f"no response from {self._host} within {timeout_s:.1f} s") from error
        except ollama.ResponseError as error:
            raise _http_failure(error, self.model) from error
        except (ConnectionError, httpx.TransportError) as error:
            raise _AttemptFailed("unavailable", f"ollama at {self._host} is unreachable: {_describe(error)}") from error
        except ValidationError as error:
            raise _AttemptFailed("bad_response", f"ollama sent a response of unexpected shape: {error.error_count()} errors") from error

    def _parse(self, answer: ollama.GenerateResponse, attempts: int) -> Assessment:
        if answer.done_reason == "length":
            raise _AttemptFailed("truncated", f"output hit num_predict={self._settings.ollama_num_predict} before the JSON closed")

        try:
            parsed = ModelAnswer.model_validate(json.loads(answer.response or ""))
        except json.JSONDecodeError as error:
            raise _AttemptFailed("invalid_json", f"output is not JSON: {error.msg} at char {error.pos}") from error
        except ValidationError as error:
            raise _AttemptFailed("schema_violation", _summarize(error)) from error

        dimensions = parsed.dimensions()
        return Assessment(
            model_score=weighted_score(dimensions),
            dimensions=dimensions,
            reasoning=parsed.reasoning,
            risk_factors=tuple(parsed.risk_factors),
            strengths=tuple(parsed.strengths),
            model=self.model,
            prompt_version=PROMPT_VERSION,
            attempts=attempts,
            prompt_tokens=answer.prompt_eval_count,
            output_tokens=answer.eval_count,
        )


def _http_failure(error: ollama.ResponseError, model: str) -> _AttemptFailed:
    if error.status_code == 404:
        return _AttemptFailed("model_not_found", f"model {model} is not pulled: run `ollama pull {model}`")
    if error.status_code == 503:
        return _AttemptFailed("unavailable", "ollama's request queue is full (HTTP 503)")
    return _AttemptFailed("bad_response", f"ollama answered HTTP {error.status_code}: {error.error[:200]}")


def _summarize(error: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in problem['loc']) or 'answer'}: {problem['type']}" for problem in error.errors()]
    return f"output violates the schema ({'; '.join(problems[:5])})"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
