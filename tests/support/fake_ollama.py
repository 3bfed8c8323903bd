"""A stand-in `ollama` executable for running the compose file's shell snippets.

The script mimics the Ollama 0.5.4 CLI's exit codes: `--version` always exits 0,
while `list` and `pull` exit 1 with "could not connect" while the server is
down. Its state lives in files under one directory so a test can flip it.
"""

from __future__ import annotations

import os
from pathlib import Path

_SCRIPT = """#!/bin/sh
# Stand-in for the ollama CLI. Its state lives in $FAKE_OLLAMA_STATE.
state="$FAKE_OLLAMA_STATE"
echo "$*" >> "$state/calls"
down() {
    echo "Error: could not connect to ollama app, is it running?" >&2
    exit 1
}
case "$1" in
    --version)
        [ -e "$state/server-down" ] && \
            echo "Warning: could not connect to a running Ollama instance" >&2
        echo "ollama version is 0.5.4"
        exit 0 ;;
    list)
        [ -e "$state/server-down" ] && down
        echo "NAME    ID    SIZE    MODIFIED"
        [ -e "$state/model" ] && echo "$(cat "$state/model")    a80c4f17acd5    1.3 GB    1 second ago"
        exit 0 ;;
    pull)
        [ -e "$state/server-down" ] && down
        failures=$(cat "$state/pull-failures" 2>/dev/null || echo 0)
        if [ "$failures" -gt 0 ]; then
            echo $((failures - 1)) > "$state/pull-failures"
            down
        fi
        echo "pulling manifest"
        echo "$2" > "$state/model"
        echo "success"
        exit 0 ;;
esac
echo "Error: unknown command \\"$1\\" for \\"ollama\\"" >&2
exit 1
"""


class FakeOllama:
    """A stand-in `ollama` on a private PATH directory, with switchable state."""

    def __init__(self, root: Path) -> None:
        self.bin_dir = root / "bin"
        self.state_dir = root / "state"
        self.bin_dir.mkdir()
        self.state_dir.mkdir()
        executable = self.bin_dir / "ollama"
        executable.write_text(_SCRIPT)
        executable.chmod(0o755)

    def environment(self, **extra: str) -> dict[str, str]:
        """Return an environment whose PATH finds the stand-in first."""
        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["FAKE_OLLAMA_STATE"] = str(self.state_dir)
        env.update(extra)
        return env

    def set_server_down(self, down: bool) -> None:
        marker = self.state_dir / "server-down"
        if down:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def fail_pulls(self, count: int) -> None:
        (self.state_dir / "pull-failures").write_text(f"{count}\n")

    def calls(self) -> list[str]:
        path = self.state_dir / "calls"
        if not path.exists():
            return []
        return path.read_text().splitlines()

    def has_model(self) -> bool:
        return (self.state_dir / "model").exists()
