"""Benchmark the in-process scoring core: features, rubric, BCS encoding and signature.

Runs the recorded 75-transaction retail wallet and a synthetic wallet of
10,000 transactions (with internal and token rows) through
``extract_features``, ``score_rubric`` and ``sign_score`` with a throwaway key,
and prints p50/p95 per pipeline run. No network and no model are involved.

    .venv/bin/python bench/bench_pipeline.py [--runs N]

Targets: p50 at most 1 ms for 75 transactions and 50 ms for 10,000. The
load average is printed before and after the runs, because other processes
on a small machine can add a good share to the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.recordings import RETAIL_DEFI, recorded_history  # noqa: E402

from evm_score_oracle.explorer import WalletHistory  # noqa: E402
from evm_score_oracle.features import extract_features  # noqa: E402
from evm_score_oracle.scoring import score_rubric  # noqa: E402
from evm_score_oracle.signing import OracleKey, sign_score  # noqa: E402

AS_OF_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
SYNTHETIC_WALLET = "0x" + "5a" * 20
KNOWN_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"


def synthetic_history(transactions: int, seed: int = 1) -> WalletHistory:
    """Build a wallet with ``transactions`` normal rows plus a quarter as many internal and token rows.

    Fixed seed, so every run measures the same rows.
    """
    rng = random.Random(seed)
    start = AS_OF_MS // 1000 - 3 * 365 * 86_400
    peers = [f"0x{rng.getrandbits(160):040x}" for _ in range(2000)] + [KNOWN_ROUTER]
    normal, internal, tokens = [], [], []

    for index in range(transactions):
        row = _synthetic_row(rng, index, start, peers)
        normal.append(row)
        if index % 4 == 0:
            internal.append({**row, "from": rng.choice(peers), "to": SYNTHETIC_WALLET, "traceId": "0"})
            tokens.append({**row, "contractAddress": rng.choice(peers[:50]), "logIndex": "1", "value": "5"})

    return WalletHistory(
        address=SYNTHETIC_WALLET,
        chain_id="1",
        sources=("txlist", "txlistinternal", "tokentx", "balance"),
        transactions=tuple(normal),
        internal_transactions=tuple(internal),
        token_transfers=tuple(tokens),
        balance_wei=3 * 10**18,
    )


def _synthetic_row(rng: random.Random, index: int, start: int, peers: list[str]) -> dict[str, str]:
    outgoing = rng.random() < 0.7
    peer = rng.choice(peers)
    failed = rng.random() < 0.02
    return {
        "blockNumber": str(15_000_000 + index),
        "timeStamp": str(start + index * 9000 + rng.randrange(9000)),
        "hash": f"0x{index:064x}",
        "from": SYNTHETIC_WALLET if outgoing else peer,
        "to": peer if outgoing else SYNTHETIC_WALLET,
        "value": str(rng.randrange(10**19)),
        "gasUsed": str(rng.randrange(21_000, 300_000)),
        "gasPrice": str(rng.randrange(10**9, 10**11)),
        "isError": "1" if failed else "0",
        "txreceipt_status": "0" if failed else "1",
        "input": "0x7ff36ab5" + "00" * 64 if rng.random() < 0.5 else "0x",
        "contractAddress": "",
    }


def time_pipeline(history: WalletHistory, key: OracleKey, runs: int) -> list[float]:
    """Return the wall-clock milliseconds of each of ``runs`` pipeline runs."""
    elapsed_ms = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        features = extract_features(history, AS_OF_MS)
        rubric = score_rubric(features)
        sign_score(key, score=rubric.total, wallet_address=history.address, timestamp_ms=AS_OF_MS)
        elapsed_ms.append((time.perf_counter_ns() - started) / 1e6)
    return elapsed_ms


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _load_average() -> str:
    last_1m, last_5m, last_15m = os.getloadavg()
    return f"load average {last_1m:.2f} {last_5m:.2f} {last_15m:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="pipeline runs per wallet (default 200)")
    args = parser.parse_args()

    key = OracleKey.generate()
    cases = [
        ("retail wallet, 75 txs", recorded_history(RETAIL_DEFI), 1.0),
        ("synthetic, 10,000 txs", synthetic_history(10_000), 50.0),
    ]

    print(_load_average())
    print(f"{'wallet':<24} {'runs':>5} {'p50 ms':>8} {'p95 ms':>8} {'target p50':>11}")
    for name, history, target_ms in cases:
        time_pipeline(history, key, 3)  # warm-up
        timings = time_pipeline(history, key, args.runs)
        p50 = statistics.median(timings)
        p95 = percentile(timings, 0.95)
        verdict = "ok" if p50 <= target_ms else "MISSED"
        print(f"{name:<24} {args.runs:>5} {p50:>8.3f} {p95:>8.3f} {target_ms:>8.1f} {verdict}")
    print(_load_average())


if __name__ == "__main__":
    main()
