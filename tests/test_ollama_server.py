"""Tests that the test server answers in Ollama 0.5.4's shapes, checked with raw HTTP and the official client."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest
from support.ollama import MODEL_NAME, ollama_server, start_ollama_server  # noqa: F401 - fixtures

TAG_KEYS = {"name", "model", "modified_at", "size", "digest", "details"}
DETAIL_KEYS = {"parent_model", "format", "family", "families", "parameter_size", "quantization_level"}
FINAL_KEYS = {
    "model",
    "created_at",
    "response",
    "done",
    "done_reason",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}
SCHEMA = {
    "type": "object",
    "properties": {"rating": {"type": "integer"}, "word": {"type": "string"}},
    "required": ["rating", "word"],
    "additionalProperties": False,
}


def test_no_model_lists_nothing(start_ollama_server) -> None:
    server = start_ollama_server("--no-model")

    tags = httpx.get(f"{server.url}/api/tags").json()
    generate = httpx.post(f"{server.url}/api/generate", json={"model": MODEL_NAME, "prompt": "hi"})

    assert tags == {"models": []}
    assert generate.status_code == 404
    assert generate.json() == {"error": f"model '{MODEL_NAME}' not found"}


def test_root_version_and_errors(start_ollama_server) -> None:
    server = start_ollama_server("--no-model")

    root = httpx.get(f"{server.url}/")
    version = httpx.get(f"{server.url}/api/version").json()
    no_body = httpx.post(f"{server.url}/api/generate")
    no_model = httpx.post(f"{server.url}/api/generate", json={"prompt": "hi"})

    assert root.status_code == 200
    assert root.text == "Ollama is running"
    assert version == {"version": "0.5.4"}
    assert no_body.status_code == 400
    assert "error" in no_body.json()
    assert no_model.status_code == 400
    assert no_model.json() == {"error": "model is required"}


@pytest.mark.model
def test_tags_shape(ollama_server) -> None:
    models = httpx.get(f"{ollama_server.url}/api/tags").json()["models"]

    assert len(models) == 1
    assert set(models[0]) == TAG_KEYS
    assert set(models[0]["details"]) == DETAIL_KEYS
    assert models[0]["name"] == models[0]["model"] == MODEL_NAME
    assert models[0]["size"] > 50_000_000


@pytest.mark.model
def test_unknown_model_is_404(ollama_server) -> None:
    answer = httpx.post(f"{ollama_server.url}/api/generate", json={"model": "nope:1b", "prompt": "hi"})
    show = httpx.post(f"{ollama_server.url}/api/show", json={"model": "nope:1b"})

    assert answer.status_code == 404
    assert answer.json() == {"error": "model 'nope:1b' not found"}
    assert show.status_code == 404


@pytest.mark.model
def test_generate_schema_output_and_fields(ollama_server) -> None:
    body = {
        "model": MODEL_NAME,
        "prompt": "Rate the colour blue from 0 to 10 and give one word.",
        "format": SCHEMA,
        "stream": False,
        "keep_alive": "24h",
        "options": {"seed": 7, "temperature": 0.1, "num_predict": 64},
    }

    first = httpx.post(f"{ollama_server.url}/api/generate", json=body, timeout=120).json()
    second = httpx.post(f"{ollama_server.url}/api/generate", json=body, timeout=120).json()

    assert set(first) == FINAL_KEYS
    assert first["done"] is True
    assert first["done_reason"] in ("stop", "length")
    assert first["eval_count"] <= 64
    assert all(isinstance(first[name], int) for name in ("total_duration", "prompt_eval_count", "eval_duration"))
    if first["done_reason"] == "stop":
        parsed = json.loads(first["response"])
        assert set(parsed) == {"rating", "word"}
        assert isinstance(parsed["rating"], int)
    assert second["response"] == first["response"]


@pytest.mark.model
def test_generate_truncates_at_num_predict(ollama_server) -> None:
    body = {"model": MODEL_NAME, "prompt": "Count to one hundred.", "stream": False, "options": {"num_predict": 4}}

    answer = httpx.post(f"{ollama_server.url}/api/generate", json=body, timeout=120).json()

    assert answer["done_reason"] == "length"
    assert answer["eval_count"] == 4


@pytest.mark.model
def test_generate_streams_ndjson(ollama_server) -> None:
    body = {"model": MODEL_NAME, "prompt": "Say hi.", "options": {"num_predict": 8}}

    answer = httpx.post(f"{ollama_server.url}/api/generate", json=body, timeout=120)
    lines = [json.loads(line) for line in answer.text.splitlines()]

    assert answer.headers["content-type"] == "application/x-ndjson"
    assert lines[0]["done"] is False
    assert lines[-1]["done"] is True
    assert set(lines[-1]) == FINAL_KEYS


@pytest.mark.model
def test_bad_format_is_500(ollama_server) -> None:
    body = {"model": MODEL_NAME, "prompt": "hi", "format": "yaml", "stream": False}

    answer = httpx.post(f"{ollama_server.url}/api/generate", json=body, timeout=60)

    assert answer.status_code == 500
    assert "invalid format" in answer.json()["error"]


@pytest.mark.model
async def test_official_client_reads_answers(ollama_server) -> None:
    client = ollama.AsyncClient(host=ollama_server.url, timeout=120)

    listing = await client.list()
    loaded = await client.generate(model=MODEL_NAME, prompt="", keep_alive=-1)
    answer = await client.generate(model=MODEL_NAME, prompt="Say hi.", options={"num_predict": 8, "seed": 1})
    with pytest.raises(ollama.ResponseError) as raised:
        await client.generate(model="nope:1b", prompt="hi")
    await client._client.aclose()

    assert [model.model for model in listing.models] == [MODEL_NAME]
    assert loaded.done_reason == "load"
    assert answer.done is True
    assert answer.eval_count and answer.eval_count <= 8
    assert raised.value.status_code == 404
    assert raised.value.error == "model 'nope:1b' not found"
