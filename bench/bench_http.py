"""Benchmark full HTTP /score requests against the replayed explorer on loopback.

Starts replay-explorer and ``evm-score-oracle serve`` as real processes (no
Ollama, so every answer is the signed rubric score), sends sequential requests
for the 75-transaction retail wallet and prints p50/p95 latency, requests per
second and the oracle's peak resident memory.

    .venv/bin/python bench/bench_http.py [--requests N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.processes import Oracle, start_replay  # noqa: E402
from support.upstreams import refused_port  # noqa: E402

from evm_score_oracle.signing import write_new_key  # noqa: E402

WALLET = "0xc38b0528097b8076048bedf4330644f068cec2e6"


def peak_rss_mib(pid: int) -> float:
    """Read the process's peak resident set size (VmHWM) from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM line for process {pid}")


def run(requests: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    key_file = workdir / "ecdsa.sec"
    write_new_key(key_file)
    replay, replay_url = start_replay(workdir)
    env = {
        "EXPLORER_URL": replay_url + "/api",
        "EXPLORER_CHAIN_ID": "",
        "EXPLORER_SOURCES": "txlist",
        "OLLAMA_HOST": f"http://127.0.0.1:{refused_port()}",
        "LOG_LEVEL": "WARNING",
    }
    oracle = Oracle(workdir, key_file, env).wait_until_up()

    try:
        latencies_ms = measure(oracle.url, requests)
        rss = peak_rss_mib(oracle.popen.pid)
    finally:
        oracle.stop()
        replay.stop()

    total_s = sum(latencies_ms) / 1000
    print(f"requests            {requests}")
    print(f"p50 latency         {statistics.median(latencies_ms):.1f} ms")
    print(f"p95 latency         {statistics.quantiles(latencies_ms, n=20)[18]:.1f} ms")
    print(f"requests per second {requests / total_s:.0f} (sequential, one client)")
    print(f"oracle peak RSS     {rss:.0f} MiB")


def measure(base_url: str, requests: int) -> list[float]:
    latencies_ms = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.get("/score", params={"address": WALLET}).raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            client.get("/score", params={"address": WALLET}).raise_for_status()
            latencies_ms.append((time.perf_counter() - started) * 1000)
    return latencies_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests (default 300)")
    run(parser.parse_args().requests)


if __name__ == "__main__":
    main()
