"""Tests for the Dockerfile and requirements.lock without a Docker engine.

The static checks read the Dockerfile. The slow test installs the lock with
the Dockerfile's own pip flags into a fresh virtual environment (this needs
the package index), installs the project next to it, and starts the image's
entry point outside Docker against a throwaway key.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCK = (ROOT / "requirements.lock").read_text()
START_LIMIT_S = 60.0


def instructions(keyword: str) -> list[str]:
    """Return the arguments of every Dockerfile instruction named ``keyword``."""
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.split(None, 1)[:1] == [keyword]]


def locked_requirements() -> dict[str, str]:
    """Map each package in requirements.lock to the text of its entry."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.split("\n\n", 1)[-1].strip())
    return {entry.split("==", 1)[0].lower(): entry for entry in entries if "==" in entry}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Dockerfile


def test_dockerfile_base_pinned_by_digest() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)

    assert base is not None
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*@sha256:[0-9a-f]{64}", base.group(1))
    assert instructions("FROM") == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_dockerfile_installs_hashed_lock() -> None:
    runs = " ".join(instructions("RUN"))

    assert "--require-hashes --no-deps -r /tmp/requirements.lock" in runs
    assert "--only-binary=:all:" in runs


def test_dockerfile_final_stage_has_no_build_tools() -> None:
    final_stage = DOCKERFILE.split("\nFROM ${PYTHON_IMAGE}\n", 1)[1]

    for tool in ("apt-get", "gcc", "build-essential", "pip wheel"):
        assert tool not in final_stage, tool


def test_dockerfile_reproducibility_settings() -> None:
    assert instructions("ARG").count("SOURCE_DATE_EPOCH=0") == 2
    assert "PYTHONDONTWRITEBYTECODE=1" in DOCKERFILE
    assert DOCKERFILE.count("--no-compile") == 2


def test_dockerfile_entrypoint_serves() -> None:
    assert [json.loads(entry) for entry in instructions("ENTRYPOINT")] == [["evm-score-oracle", "serve"]]


def test_dockerfile_key_path_matches_settings() -> None:
    from evm_score_oracle.config import Settings

    assert "ORACLE_KEY_FILE=/app/ecdsa.sec" in DOCKERFILE
    assert str(Settings.model_fields["oracle_key_file"].default) == "/app/ecdsa.sec"


# requirements.lock


def test_lock_covers_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {normalize(re.split(r"[<>=!~\[; ]", spec, 1)[0]) for spec in project["dependencies"]}
    locked = {normalize(name) for name in locked_requirements()}

    assert wanted <= locked, sorted(wanted - locked)


def test_lock_pins_every_entry_with_hashes() -> None:
    for name, entry in locked_requirements().items():
        assert re.match(rf"{re.escape(name)}==\S+ \\", entry, re.IGNORECASE), entry
        assert "--hash=sha256:" in entry, name


def test_lock_has_no_test_extras() -> None:
    locked = {normalize(name) for name in locked_requirements()}

    for name in ("pytest", "hypothesis", "schemathesis", "llama-cpp-python"):
        assert name not in locked


def test_lock_names_no_local_index() -> None:
    options = [line for line in LOCK.splitlines() if line.startswith("-")]

    assert options == []


# Fresh install and start-up (slow: downloads every locked wheel)


@pytest.mark.slow
def test_lock_installs_and_service_starts(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip_env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    # Ignore this machine's pip configuration (local indexes, constraints) so the
    # install uses the same index as `docker build`.
    pip_env["PIP_CONFIG_FILE"] = os.devnull
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-compile"]

    locked = subprocess.run(
        [*pip, "--only-binary=:all:", "--require-hashes", "--no-deps", "-r", str(ROOT / "requirements.lock")],
        env=pip_env, capture_output=True, text=True, timeout=900,
    )
    assert locked.returncode == 0, locked.stderr[-3000:]
    project = subprocess.run([*pip, "--no-deps", str(ROOT)], env=pip_env, capture_output=True, text=True, timeout=900)
    assert project.returncode == 0, project.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    entrypoint = json.loads(instructions("ENTRYPOINT")[0])
    assert_service_starts(venv / "bin", entrypoint, tmp_path)


def assert_service_starts(bin_dir: Path, entrypoint: list[str], tmp_path: Path) -> None:
    key_file = tmp_path / "ecdsa.sec"
    key_file.write_bytes(os.urandom(31) + b"\x01")
    port = free_port()
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        ORACLE_KEY_FILE=str(key_file),
        ORACLE_HOST="127.0.0.1",
        ORACLE_PORT=str(port),
        OLLAMA_HOST=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        OLLAMA_WARM_UP="false",
    )
    log = (tmp_path / "service.log").open("w")
    service = subprocess.Popen([str(bin_dir / entrypoint[0]), *entrypoint[1:]], env=env, stdout=log, stderr=log)
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}/health", service)
        public_key = httpx.get(f"http://127.0.0.1:{port}/public-key", timeout=5).json()["public_key"]
    finally:
        service.terminate()
        service.wait(timeout=30)

    assert health["ollama"] != "connected"
    assert re.fullmatch(r"0[23][0-9a-f]{64}", public_key)


def wait_for_health(url: str, service: subprocess.Popen) -> dict:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        assert service.poll() is None, f"service exited with status {service.returncode}"
        try:
            return httpx.get(url, timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"timed out after {START_LIMIT_S} s waiting for {url}")
