"""HTTP routes of the Ollama-compatible test server, in Ollama 0.5.4's shapes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .engine import Completion, Engine, GrammarError

OLLAMA_VERSION = "0.5.4"


@dataclass
class ServerState:
    """What the server serves and what it has received."""

    model_name: str
    engine: Engine | None
    delay_s: float = 0.0
    generate_requests: list[dict] = field(default_factory=list)
    loaded: bool = False


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    model_lock = asyncio.Lock()

    @app.get("/")
    @app.head("/")
    async def root() -> Response:
        return PlainTextResponse("Ollama is running")

    @app.get("/api/version")
    async def version() -> dict:
        return {"version": OLLAMA_VERSION}

    @app.get("/api/tags")
    async def tags() -> dict:
        return {"models": [_model_entry(state)] if state.engine else []}

    @app.get("/api/ps")
    async def running() -> dict:
        if not (state.engine and state.loaded):
            return {"models": []}
        entry = _model_entry(state)
        entry.pop("modified_at")
        entry.update(expires_at=_now(), size_vram=0)
        return {"models": [entry]}

    @app.post("/api/show")
    async def show(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        missing = _check_model(state, body)
        if missing is not None:
            return missing
        entry = _model_entry(state)
        return JSONResponse(
            {
                "modelfile": f"FROM {state.engine.gguf}\n",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": entry["details"],
                "model_info": {"general.architecture": "llama"},
                "modified_at": entry["modified_at"],
            }
        )

    @app.post("/api/generate")
    async def generate(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        state.generate_requests.append(body)
        missing = _check_model(state, body)
        if missing is not None:
            return missing

        options = body.get("options") or {}
        if not isinstance(options, dict):
            return _error(400, "invalid options: expected an object")

        if not body.get("prompt"):
            # Ollama loads the model and answers at once for an empty prompt.
            state.loaded = True
            return JSONResponse(_final(state, None, load_only=True))

        if state.delay_s:
            await asyncio.sleep(state.delay_s)

        try:
            async with model_lock:
                completion = await anyio.to_thread.run_sync(lambda: _complete(state.engine, body, options))
        except GrammarError as error:
            return _error(500, str(error))
        except (TypeError, ValueError) as error:
            return _error(400, f"invalid options: {error}")

        state.loaded = True
        if body.get("stream", True):
            return StreamingResponse(_stream(state, completion), media_type="application/x-ndjson")
        return JSONResponse(_final(state, completion))

    @app.get("/_test/requests")
    async def received() -> dict:
        return {"generate": state.generate_requests}

    return app


def _complete(engine: Engine, body: dict, options: dict) -> Completion:
    return engine.complete(
        prompt=str(body["prompt"]),
        system=body.get("system"),
        raw=bool(body.get("raw", False)),
        grammar_format=body.get("format"),
        options=options,
    )


async def _json_body(request: Request) -> dict | Response:
    raw = await request.body()
    if not raw:
        return _error(400, "missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        return _error(400, f"invalid JSON body: {error.msg}")
    if not isinstance(body, dict):
        return _error(400, "invalid request body: expected a JSON object")
    return body


def _check_model(state: ServerState, body: dict) -> Response | None:
    name = body.get("model")
    if not name:
        return _error(400, "model is required")
    if state.engine is None or name != state.model_name:
        return _error(404, f"model '{name}' not found")
    return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _model_entry(state: ServerState) -> dict:
    digest = hashlib.sha256(f"{state.model_name}:{state.engine.size}".encode()).hexdigest()
    return {
        "name": state.model_name,
        "model": state.model_name,
        "modified_at": "2024-12-17T10:00:00.000000000Z",
        "size": state.engine.size,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "134.52M",
            "quantization_level": "Q4_1",
        },
    }


def _final(state: ServerState, completion: Completion | None, *, load_only: bool = False) -> dict:
    answer = {"model": state.model_name, "created_at": _now(), "response": "", "done": True}
    if load_only or completion is None:
        answer["done_reason"] = "load"
        return answer

    total_ns = completion.prompt_ns + completion.output_ns
    answer.update(
        response=completion.text,
        done_reason=completion.done_reason,
        total_duration=total_ns,
        load_duration=0,
        prompt_eval_count=completion.prompt_tokens,
        prompt_eval_duration=completion.prompt_ns,
        eval_count=completion.output_tokens,
        eval_duration=completion.output_ns,
    )
    return answer


async def _stream(state: ServerState, completion: Completion):
    # One chunk with the whole text, then the closing chunk, as Ollama's
    # NDJSON stream does token by token.
    chunk = {"model": state.model_name, "created_at": _now(), "response": completion.text, "done": False}
    yield json.dumps(chunk) + "\n"
    closing = _final(state, completion)
    closing["response"] = ""
    yield json.dumps(closing) + "\n"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
