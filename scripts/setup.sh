#!/usr/bin/env bash
# Create .venv and install the oracle into it.
#   scripts/setup.sh          the oracle alone
#   scripts/setup.sh --test   also the test tools, the small test model and the
#                             node packages of the BCS/secp256k1 cross-check
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [[ "${1:-}" == "--test" ]]; then
    extras="[test,model]"
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi

# llama-cpp-python compiles from source; two jobs fit a 2-core machine.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"

if [[ -n "$extras" ]]; then
    (cd tests/js && npm ci --no-audit --no-fund --silent)
fi
