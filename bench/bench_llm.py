"""Measure tokens and latency per model assessment against an Ollama-compatible server.

Usage (from the repository root, with the test server's real small model):

    python bench/bench_llm.py [--url URL] [--runs N] [--reputa-prompt FILE ...]

Without ``--url`` it starts ``python -m tests.ollama_server`` itself. Each
recorded wallet is assessed ``--runs`` times (each run with a fresh assessor,
so no single-flight sharing); the table gives prompt and output tokens as the
server counted them and the end-to-end ``assess`` latency. ``--reputa-prompt``
takes a file holding a complete prompt of another oracle, already filled in
for a wallet; it is sent the same way that oracle sends it (``format`` "json",
temperature 0.3, ``--reputa-num-predict``) so both are counted by one tokenizer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from support.ollama import MODEL_NAME, OllamaServer  # noqa: E402
from support.recordings import DEFI_BRIDGE, DORMANT_3TX, NO_TRANSACTIONS, RETAIL_DEFI, recorded_history  # noqa: E402

from evm_score_oracle.config import Settings  # noqa: E402
from evm_score_oracle.errors import ModelError  # noqa: E402
from evm_score_oracle.features import extract_features  # noqa: E402
from evm_score_oracle.llm import OllamaAssessor  # noqa: E402
from evm_score_oracle.scoring import score_rubric  # noqa: E402

AS_OF_MS = 1_700_000_000_000
WALLETS = {"retail 75 tx": RETAIL_DEFI, "defi bridge": DEFI_BRIDGE, "dormant 3 tx": DORMANT_3TX, "empty": NO_TRANSACTIONS}


async def bench_wallet(url: str, address: str, runs: int) -> list[dict]:
    features = extract_features(recorded_history(address, ("txlist",)), AS_OF_MS)
    rubric = score_rubric(features)
    results = []

    for _ in range(runs):
        assessor = OllamaAssessor(Settings(ollama_host=url, ollama_model=MODEL_NAME))
        before = _request_count(url)
        started = time.monotonic()
        try:
            assessment = await assessor.assess(address=address, features=features, rubric=rubric, deadline_s=300)
            outcome, prompt_tokens, output_tokens = "ok", assessment.prompt_tokens, assessment.output_tokens
        except ModelError as error:
            outcome, prompt_tokens, output_tokens = error.reason, None, None
        elapsed_s = time.monotonic() - started
        await assessor.aclose()
        results.append(
            {
                "outcome": outcome,
                "calls": _request_count(url) - before,
                "prompt_tokens": prompt_tokens,
                "output_tokens": output_tokens,
                "seconds": elapsed_s,
            }
        )
    return results


def bench_reputa(url: str, prompt: str, num_predict: int, runs: int) -> list[dict]:
    results = []
    for run in range(runs):
        body = {
            "model": MODEL_NAME,
            "prompt": prompt,
            "format": "json",
            "stream": False,
            "options": {"temperature": 0.3, "num_predict": num_predict, "seed": run},
        }
        started = time.monotonic()
        answer = httpx.post(f"{url}/api/generate", json=body, timeout=600).json()
        results.append(
            {
                "outcome": answer["done_reason"],
                "calls": 1,
                "prompt_tokens": answer["prompt_eval_count"],
                "output_tokens": answer["eval_count"],
                "seconds": time.monotonic() - started,
            }
        )
    return results


def _request_count(url: str) -> int:
    return len(httpx.get(f"{url}/_test/requests", timeout=10).json()["generate"])


def print_row(label: str, results: list[dict]) -> None:
    ok = [result for result in results if result["prompt_tokens"] is not None]
    prompt = statistics.median(result["prompt_tokens"] for result in ok) if ok else float("nan")
    output = statistics.median(result["output_tokens"] for result in ok) if ok else float("nan")
    seconds = sorted(result["seconds"] for result in results)
    outcomes = ",".join(sorted({result["outcome"] for result in results}))
    calls = sum(result["calls"] for result in results) / len(results)
    print(
        f"| {label} | {len(results)} | {outcomes} | {calls:.1f} | {prompt:.0f} | {output:.0f} | {prompt + output:.0f} "
        f"| {statistics.median(seconds):.2f} | {seconds[-1]:.2f} |"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="Ollama-compatible server with /_test/requests (default: start the test server)")
    parser.add_argument("--runs", type=int, default=3, help="assessments per wallet")
    parser.add_argument("--reputa-prompt", type=Path, action="append", default=[], help="filled prompt file to compare")
    parser.add_argument("--reputa-num-predict", type=int, default=800, help="num_predict for --reputa-prompt")
    args = parser.parse_args()

    server = None if args.url else OllamaServer(log_path=Path("/tmp/bench-ollama-server.log"))
    url = args.url or server.url
    try:
        print("| run | n | outcomes | model calls | prompt tokens | output tokens | tokens/score | p50 s | max s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for label, address in WALLETS.items():
            print_row(f"ours: {label}", await bench_wallet(url, address, args.runs))
        for path in args.reputa_prompt:
            results = bench_reputa(url, path.read_text(), args.reputa_num_predict, args.runs)
            print_row(f"reputa: {path.name}, num_predict {args.reputa_num_predict}", results)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
