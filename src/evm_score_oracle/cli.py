"""Command line: ``evm-score-oracle serve | score | verify | keygen | replay-explorer | attestation``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidInputError, OracleError, UnusableInputError, UpstreamError, VerificationError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand and return its exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    _configure_logging()

    try:
        return args.run(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED


# Parser


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evm-score-oracle",
        description="Signed trust scores for EVM wallets.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", dest="oracle_host", help="address to listen on (ORACLE_HOST, default 0.0.0.0)")
    serve.add_argument("--port", dest="oracle_port", type=int, help="TCP port (ORACLE_PORT, default 3000)")
    _add_pipeline_flags(serve)
    serve.set_defaults(run=_run_serve)

    score = commands.add_parser("score", help="score and sign one wallet, print the signed response as JSON")
    score.add_argument("address", help="wallet address, 0x + 40 hex digits")
    score.add_argument("--no-llm", action="store_true", help="sign the rubric score without asking the model")
    _add_pipeline_flags(score)
    score.set_defaults(run=_run_score)

    verify = commands.add_parser("verify", help="check the signature of a /score response")
    verify.add_argument("file", help="file with the /score JSON response, or - for standard input")
    key_source = verify.add_mutually_exclusive_group(required=True)
    key_source.add_argument("--public-key", help="oracle public key, hex (33-byte compressed or 64-byte X||Y)")
    key_source.add_argument("--oracle", metavar="URL", help="oracle base URL; its /public-key is fetched")
    verify.set_defaults(run=_run_verify)

    keygen = commands.add_parser("keygen", help="write a throwaway development key (32 raw bytes, mode 0600)")
    keygen.add_argument("path", type=Path, help="where to write the key; an existing file is never overwritten")
    keygen.set_defaults(run=_run_keygen)

    replay = commands.add_parser("replay-explorer", help="serve recorded explorer responses on 127.0.0.1")
    replay.add_argument("directory", type=Path, help="folder of recorded *.json explorer exchanges")
    replay.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    replay.add_argument("--port", type=_port_number, default=8545, help="TCP port; 0 picks a free one (default 8545)")
    replay.set_defaults(run=_run_replay)

    _add_attestation_parser(commands)
    return parser


def _port_number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected a whole number from 0 to 65535")
    return int(text)


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-file", dest="oracle_key_file", type=Path, help="secp256k1 key, 32 raw bytes (ORACLE_KEY_FILE)")
    parser.add_argument("--explorer-url", help="Etherscan-compatible API URL (EXPLORER_URL)")
    parser.add_argument("--explorer-chain-id", help="chainid to send; empty sends none (EXPLORER_CHAIN_ID)")
    parser.add_argument("--explorer-sources", help="comma-separated account actions (EXPLORER_SOURCES)")
    parser.add_argument("--ollama-host", help="Ollama base URL (OLLAMA_HOST)")
    parser.add_argument("--ollama-model", help="model name (OLLAMA_MODEL)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (LOG_LEVEL, default INFO)")


def _add_attestation_parser(commands: Any) -> None:
    attestation = commands.add_parser("attestation", help="enclave attestation documents")
    actions = attestation.add_subparsers(dest="action", required=True, metavar="ACTION")

    verify = actions.add_parser("verify", help="verify a Nitro attestation document offline and print its facts")
    verify.add_argument("source", help="document file, - for standard input, or an http(s) URL")
    verify.add_argument("--root", choices=("aws", "mock"), default="aws", help="trusted root (default aws)")
    verify.add_argument("--max-age", type=float, metavar="S", help="reject documents older than S seconds")
    verify.add_argument(
        "--expect-pcr", action="append", default=[], metavar="N=HEX", help="expected PCR value; repeatable"
    )
    verify.add_argument("--public-key", help="oracle public key (hex) that the document must attest")
    verify.set_defaults(run=_run_attestation_verify)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and explorer URLs carry the API key.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def _settings_from(args: argparse.Namespace) -> Any:
    from .config import load_settings

    names = (
        "oracle_host", "oracle_port", "oracle_key_file", "explorer_url", "explorer_chain_id",
        "explorer_sources", "ollama_host", "ollama_model", "log_level",
    )
    settings = load_settings(**{name: getattr(args, name, None) for name in names})
    logging.getLogger().setLevel(settings.log_level)
    return settings


# Commands


def _run_serve(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
    return asyncio.run(_serve(settings))


async def _serve(settings: Any) -> int:
    import uvicorn

    from .api import create_app

    service, explorer, assessor = _build_service(settings, use_model=True)
    log.info(
        "starting oracle on %s:%d, explorer %s, sources %s, model %s at %s",
        settings.oracle_host, settings.oracle_port, settings.explorer_url,
        ",".join(settings.explorer_sources), settings.ollama_model, settings.ollama_host,
    )
    listener = _bind(settings.oracle_host, settings.oracle_port)
    app = create_app(service, assessor, warm_up=settings.ollama_warm_up)
    config = uvicorn.Config(
        app, host=settings.oracle_host, port=settings.oracle_port, log_config=None, access_log=False
    )
    try:
        await uvicorn.Server(config).serve(sockets=[listener])
    finally:
        await explorer.aclose()
        await assessor.aclose()
        log.info("oracle stopped")
    return EXIT_OK


def _bind(host: str, port: int) -> socket.socket:
    """Open the listening socket before start-up, so a bad address fails with a clear message."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, protocol)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(
            f"cannot listen on {host}:{port}: {reason}; check ORACLE_HOST and ORACLE_PORT (or --host and --port)"
        ) from error
    return listener


def _run_score(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
    return asyncio.run(_score_once(settings, args.address, use_model=not args.no_llm))


async def _score_once(settings: Any, address: str, *, use_model: bool) -> int:
    service, explorer, assessor = _build_service(settings, use_model=use_model)
    try:
        signed = await service.score(address)
    except InvalidInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except UpstreamError as error:
        print(f"error: no score signed: {error.upstream} failed ({error.reason}): {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await explorer.aclose()
        if assessor is not None:
            await assessor.aclose()

    print(json.dumps(signed.as_dict(), indent=2))
    return EXIT_OK


def _build_service(settings: Any, *, use_model: bool) -> tuple[Any, Any, Any]:
    from .explorer import ExplorerClient
    from .llm import OllamaAssessor
    from .service import ScoreService
    from .signing import OracleKey

    key = OracleKey.load(settings.oracle_key_file)
    explorer = ExplorerClient(settings)
    assessor = OllamaAssessor(settings) if use_model else None
    return ScoreService(settings, key, explorer, assessor), explorer, assessor


def _run_verify(args: argparse.Namespace) -> int:
    from .signing import verify_score

    try:
        answer = _read_score_answer(args.file)
        public_key = args.public_key if args.public_key is not None else _fetch_public_key(args.oracle)
        verify_score(
            public_key,
            score=answer["score"],
            wallet_address=answer["wallet_address"],
            timestamp_ms=answer["timestamp_ms"],
            signature_hex=answer["signature"],
        )
    except UnusableInputError as error:
        print(f"unusable input: {error}", file=sys.stderr)
        return EXIT_USAGE
    except VerificationError as error:
        print(f"invalid: {error}", file=sys.stderr)
        return EXIT_FAILED

    print(f"valid: score {answer['score']} for {answer['wallet_address']} at {answer['timestamp_ms']}, key {public_key}")
    return EXIT_OK


def _read_score_answer(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise UnusableInputError(f"cannot read {source}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise UnusableInputError(f"{source} is not UTF-8 text, so it is not a /score response") from error

    try:
        answer = json.loads(text)
    except json.JSONDecodeError as error:
        raise UnusableInputError(f"{source} is not JSON: {error.msg} at line {error.lineno}") from error

    if not isinstance(answer, dict):
        raise UnusableInputError(f"{source} is not a /score response: expected a JSON object")
    _check_field(answer, "score", int, 0, 2**64 - 1)
    _check_field(answer, "timestamp_ms", int, 0, 2**64 - 1)
    for name in ("wallet_address", "signature"):
        if not isinstance(answer.get(name), str):
            raise UnusableInputError(f"{source} is not a /score response: field {name!r} must be a string")
    return answer


def _check_field(answer: dict[str, Any], name: str, kind: type, low: int, high: int) -> None:
    value = answer.get(name)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        raise UnusableInputError(f"not a /score response: field {name!r} must be an integer in [{low}, {high}], got {value!r}")


def _fetch_public_key(oracle_url: str) -> str:
    import httpx

    url = oracle_url.rstrip("/") + "/public-key"
    try:
        response = httpx.get(url, timeout=10.0)
        response.raise_for_status()
        return str(response.json()["public_key"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
        # httpx appends a second line with a documentation link, so keep the first, which names the failure.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnusableInputError(f"cannot fetch the public key from {url}: {reason}") from error


def _run_keygen(args: argparse.Namespace) -> int:
    from .signing import write_new_key

    key = write_new_key(args.path)
    print(f"wrote development key {args.path}, public key {key.public_key_hex}")
    return EXIT_OK


def _run_replay(args: argparse.Namespace) -> int:
    from .replay import serve_replay

    try:
        serve_replay(args.directory, host=args.host, port=args.port)
    except OracleError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _run_attestation_verify(args: argparse.Namespace) -> int:
    from .attestation import run_verify_command

    return run_verify_command(
        args.source,
        root=args.root,
        max_age_s=args.max_age,
        expected_pcrs=args.expect_pcr,
        public_key_hex=args.public_key,
    )


if __name__ == "__main__":
    sys.exit(main())
