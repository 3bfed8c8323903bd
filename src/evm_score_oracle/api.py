"""HTTP API: /health, /public-key and /score.

Bodies are compact JSON (no spaces after ``:`` or ``,``) because deploy tooling
looks for the literal text ``"ollama":"connected"``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from http import HTTPStatus
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from . import __version__
from .errors import BusyError, InvalidInputError, UpstreamError
from .llm import OllamaAssessor
from .service import ScoreService, now_ms

log = logging.getLogger(__name__)

# Longer than any address, short enough that a huge query is rejected before
# it reaches a log line.
MAX_ADDRESS_CHARS = 100


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    ollama: Literal["connected", "unavailable"]
    timestamp: int
    model: str
    version: str
    detail: str | None = None


class PublicKeyResponse(BaseModel):
    public_key: str = Field(description="33-byte compressed secp256k1 public key, hex")


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(max_length=MAX_ADDRESS_CHARS, description="0x + 40 hex digits; mixed case must pass EIP-55")


class ScoreResponse(BaseModel):
    score: int = Field(ge=0, le=1000)
    wallet_address: str
    timestamp_ms: int
    signature: str = Field(description="64-byte r||s low-s secp256k1 signature over SHA-256 of the BCS message, hex")
    metadata: dict[str, Any]


class ErrorResponse(BaseModel):
    error: str
    detail: str
    upstream: str | None = None


_SCORE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Invalid address, or the address given more than once"},
    422: {"description": "Malformed request"},
    502: {"model": ErrorResponse, "description": "The explorer returned an error or unusable data"},
    503: {"model": ErrorResponse, "description": "An upstream is unavailable, or no model slot is free"},
    504: {"model": ErrorResponse, "description": "An upstream timed out"},
}


def create_app(service: ScoreService, assessor: OllamaAssessor, *, warm_up: bool = True) -> FastAPI:
    """Build the FastAPI application around an already configured service."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm_up_task = asyncio.create_task(assessor.warm_up()) if warm_up else None
        log.info("oracle ready, public key %s, model %s", service.public_key_hex, assessor.model)
        yield
        if warm_up_task is not None:
            warm_up_task.cancel()
        log.info("oracle shutting down")

    # No /docs or /redoc: their pages load scripts from a public CDN, which an
    # enclave should not serve. The schema stays at /openapi.json.
    app = FastAPI(title="evm-score-oracle", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    _add_error_handlers(app)
    _add_request_log(app)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """Report liveness and whether Ollama is reachable with the model pulled."""
        probe = await assessor.probe()
        return HealthResponse(
            status="ok" if probe.connected else "degraded",
            ollama="connected" if probe.connected else "unavailable",
            timestamp=now_ms(),
            model=assessor.model,
            version=__version__,
            detail=probe.detail,
        )

    @app.get("/public-key", response_model=PublicKeyResponse)
    async def public_key() -> PublicKeyResponse:
        """Return the key that verifies this oracle's signatures."""
        return PublicKeyResponse(public_key=service.public_key_hex)

    @app.get("/score", response_model=ScoreResponse, responses=_SCORE_ERRORS)
    async def score_get(request: Request, address: str = Query(max_length=MAX_ADDRESS_CHARS)) -> Any:
        """Score and sign one wallet."""
        given = len(request.query_params.getlist("address"))
        if given > 1:
            return _error(400, "ambiguous_request", f"address is given {given} times; give it once")
        return (await service.score(address)).as_dict()

    @app.post("/score", response_model=ScoreResponse, responses=_SCORE_ERRORS)
    async def score_post(request: Request, body: ScoreRequest) -> Any:
        """Score and sign one wallet."""
        if "address" in request.query_params:
            return _error(400, "ambiguous_request", "address is given in the query and in the body; give it once")
        return (await service.score(body.address)).as_dict()

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidInputError)
    async def invalid_input(request: Request, error: InvalidInputError) -> JSONResponse:
        return _error(400, "invalid_address", str(error))

    @app.exception_handler(UpstreamError)
    async def upstream_failed(request: Request, error: UpstreamError) -> JSONResponse:
        log.warning("%s %s failed: %s upstream %s: %s", request.method, request.url.path, error.upstream, error.reason, error)
        return _error(error.http_status, error.reason, str(error), upstream=error.upstream)

    @app.exception_handler(BusyError)
    async def busy(request: Request, error: BusyError) -> JSONResponse:
        response = _error(503, "busy", str(error))
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        # Starlette's own errors (unknown path, wrong method, unparseable body) get our body shape.
        if error.status_code == 400:
            # FastAPI returns 400 when the body cannot be decoded at all, which is a malformed request too.
            return _error(422, "malformed_request", "request body is not valid JSON (UTF-8, at most moderately nested)")
        name = HTTPStatus(error.status_code).phrase.lower().replace(" ", "_")
        response = _error(error.status_code, name, str(error.detail))
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(_describe_validation(problem) for problem in error.errors())
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and not content_type.startswith("application/json"):
            problems = f"expected a JSON body with content-type application/json, got {content_type or 'none'!r}; {problems}"
        return _error(422, "malformed_request", problems)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed unexpectedly", request.method, request.url.path)
        return _error(500, "internal_error", "internal error; the oracle logged the details")


def _add_request_log(app: FastAPI) -> None:
    @app.middleware("http")
    async def log_request(request: Request, call_next: Any) -> Any:
        started = time.monotonic()
        response = await call_next(request)
        elapsed_ms = (time.monotonic() - started) * 1000
        log.info("%s %s %d %.0f ms", request.method, request.url.path, response.status_code, elapsed_ms)
        return response


def _error(status: int, error: str, detail: str, *, upstream: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "detail": detail}
    if upstream is not None:
        body["upstream"] = upstream
    return JSONResponse(status_code=status, content=body)


def _describe_validation(problem: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in problem.get("loc", ()))
    return f"{location}: {problem.get('msg', 'invalid')}"
