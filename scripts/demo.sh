#!/usr/bin/env bash
# Score a real wallet end to end on this machine, with nothing from the internet:
# replay the bundled explorer recordings, start the oracle with a throwaway key,
# fetch a signed score and verify its signature.
#
#   scripts/demo.sh [ADDRESS]
#
# The default wallet is a retail DeFi user with 75 transactions (2021-2023),
# recorded from Etherscan's V1 txlist. No Ollama runs here, so the oracle signs
# the rubric score and says so in metadata.method ("rubric_fallback").
set -euo pipefail
cd "$(dirname "$0")/.."

address="${1:-0xc38b0528097b8076048bedf4330644f068cec2e6}"
scripts/setup.sh
python=.venv/bin/python
oracle=.venv/bin/evm-score-oracle

mkdir -p demo
if [[ ! -f demo/ecdsa.sec ]]; then
    "$oracle" keygen demo/ecdsa.sec
fi

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
replay_port=$(free_port)
oracle_port=$(free_port)
unused_port=$(free_port)

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

"$oracle" replay-explorer tests/data/wallets --port "$replay_port" > demo/replay.log 2>&1 &
pids+=($!)

# The V1 recordings live under /api and carry no chainid.
ORACLE_KEY_FILE=demo/ecdsa.sec ORACLE_HOST=127.0.0.1 ORACLE_PORT="$oracle_port" \
EXPLORER_URL="http://127.0.0.1:$replay_port/api" EXPLORER_CHAIN_ID="" EXPLORER_SOURCES=txlist \
OLLAMA_HOST="http://127.0.0.1:$unused_port" \
    "$oracle" serve > demo/oracle.log 2>&1 &
pids+=($!)

base="http://127.0.0.1:$oracle_port"
"$python" - "$base" <<'PY'
import sys, time, httpx
base = sys.argv[1]
for _ in range(100):
    try:
        print("health:", httpx.get(base + "/health", timeout=2).text)
        break
    except httpx.TransportError:
        time.sleep(0.2)
else:
    sys.exit("the oracle did not start; see demo/oracle.log")
PY

"$python" - "$base" "$address" > demo/score.json <<'PY'
import sys, httpx
response = httpx.get(sys.argv[1] + "/score", params={"address": sys.argv[2]}, timeout=120)
print(response.text)
if response.status_code != 200:
    sys.exit(f"/score answered HTTP {response.status_code}: {response.text}")
PY
"$python" -m json.tool demo/score.json
"$oracle" verify demo/score.json --oracle "$base"
