#!/usr/bin/env bash
# Deploy the oracle to a Marlin Oyster CVM and register it on Sui.
# The steps are in src/evm_score_oracle/deploy.py. `./deploy.sh --help` lists
# every option, and docs/deployment.md explains them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="${here}/src${PYTHONPATH:+:${PYTHONPATH}}"
# Prefer the checkout's virtual environment, which has the runtime dependencies.
python="${PYTHON:-}"
if [[ -z "${python}" ]]; then
    if [[ -x "${here}/.venv/bin/python" ]]; then python="${here}/.venv/bin/python"; else python=python3; fi
fi
exec "${python}" -m evm_score_oracle.deploy "$@"
