"""Run the real ``evm-score-oracle`` command as subprocesses on loopback ports."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

WALLETS_DIR = Path(__file__).resolve().parent.parent / "data" / "wallets"
START_TIMEOUT_S = 60.0


def oracle_command() -> list[str]:
    """Return the installed console script, so tests run what users run."""
    script = Path(sys.executable).with_name("evm-score-oracle")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "evm_score_oracle.cli"]


def free_port() -> int:
    """Return a loopback port the OS just handed out and that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one CLI command to completion and capture its output."""
    return subprocess.run(
        [*oracle_command(), *args],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Process:
    """A background process whose combined output goes to a log file."""

    def __init__(
        self, command: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.popen = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def kill(self) -> None:
        """End the process at once, as a crash would."""
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

    def wait_for_output(self, pattern: str) -> re.Match[str]:
        """Wait until the log matches ``pattern``; fail with the log if the process dies first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log_text())
            if match:
                return match
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited with {self.popen.returncode}:\n{self.log_text()}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {START_TIMEOUT_S} s:\n{self.log_text()}")


def start_replay(tmp_path: Path, directory: Path = WALLETS_DIR) -> tuple[Process, str]:
    """Start ``replay-explorer`` on a free port; return it and its base URL."""
    command = [*oracle_command(), "replay-explorer", str(directory), "--port", "0"]
    process = Process(command, tmp_path / f"replay-{time.monotonic_ns()}.log")
    match = process.wait_for_output(r"listening on (http://127\.0\.0\.1:\d+)")
    return process, match.group(1)


class Oracle(Process):
    """``evm-score-oracle serve`` on a free loopback port."""

    def __init__(self, tmp_path: Path, key_file: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {
            "ORACLE_KEY_FILE": str(key_file),
            "ORACLE_HOST": "127.0.0.1",
            "ORACLE_PORT": str(self.port),
            "OLLAMA_WARM_UP": "false",
            **env,
        }
        super().__init__([*oracle_command(), "serve"], tmp_path / f"oracle-{self.port}.log", settings)

    def wait_until_up(self) -> Oracle:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"oracle exited with {self.popen.returncode}:\n{self.log_text()}")
            try:
                httpx.get(self.url + "/public-key", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"oracle not up within {START_TIMEOUT_S} s:\n{self.log_text()}")
