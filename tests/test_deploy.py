"""Tests for deploy.py and deploy.sh with stand-in CLIs and a loopback oracle.

`oyster-cvm` and `sui` are shell scripts written into a temporary PATH
directory. They log their argv to a shared event log and print output in the
real tools' formats. A real HTTP server on 127.0.0.1 plays the enclave: its
/health turns "connected" after a set number of polls, and it serves a real
recorded Nitro attestation document with the matching secp256k1 key.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import coincurve
import pytest

from evm_score_oracle import deploy
from evm_score_oracle.errors import DeployError

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = (Path(__file__).parent / "data" / "attestations" / "real-nitro-secp256k1-key.bin").read_bytes()
# The 64-byte X||Y key attested by that document.
ATTESTED_XY = bytes.fromhex(
    "e646f8b0071d5ba75931402522cc6a5c42a84a6fea238864e5ac9a0e12d83bd3"
    "6d0c8109d3ca2b699fce8d082bf313f5d2ae249bb275b6b6e91e0fcd9262f4bb"
)
ORACLE_KEY = coincurve.PublicKey(b"\x04" + ATTESTED_XY).format(compressed=True).hex()
OTHER_KEY = coincurve.PrivateKey(b"\x01" * 32).public_key.format(compressed=True).hex()
WALLET_KEY = "ab" * 32
REAL_DIGEST = "sha256:" + "3f" * 32
JOB_ID = "0x000000000000000000000000000000000000000000000000000000000000037a"

OYSTER_SCRIPT = """#!/bin/sh
echo "oyster-cvm $*" >> "$FAKE_EVENTS"
case "$1" in
  deploy)
    while [ $# -gt 0 ]; do
      [ "$1" = "--wallet-private-key-file" ] && cp "$2" "$FAKE_STATE/key-seen"
      shift
    done
    echo "[INFO] Starting deployment..."
    case "$FAKE_OYSTER_MODE" in
      fail) echo "[ERROR] insufficient USDC balance" >&2; exit 2 ;;
      garbled) echo "[INFO] something changed in this version"; exit 0 ;;
      unquoted) echo "[INFO] Job created with ID: $FAKE_JOB_ID" ;;
      *) echo "[INFO] Job created with ID: \\"$FAKE_JOB_ID\\"" ;;
    esac
    echo "[INFO] Waiting for enclave to start..."
    echo "[INFO] IP address obtained: ${FAKE_ENCLAVE_IP:-127.0.0.1}"
    echo "[INFO] Enclave is ready! IP address: ${FAKE_ENCLAVE_IP:-127.0.0.1}"
    ;;
  verify)
    echo "[INFO] Connecting to attestation endpoint"
    echo "PCR0: $FAKE_PCR0"
    echo "[INFO] Verification successful"
    ;;
esac
"""

SUI_SCRIPT = """#!/bin/sh
echo "sui $*" >> "$FAKE_EVENTS"
[ "$FAKE_SUI_MODE" = "fail" ] && { echo "Error: insufficient gas" >&2; exit 1; }
echo "Transaction Digest: HBRKnSvFUemgKJfAgZjZbDEjTUxZbX1CSZwAzcNfZh8j"
"""


class EnclaveStandIn:
    """A loopback HTTP server that plays the oracle and the attestation server."""

    def __init__(self, events: Path, connected_after: int, public_key: str) -> None:
        self.events = events
        self.connected_after = connected_after
        self.public_key = public_key
        self.health_polls = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
                with stand_in.lock:
                    with stand_in.events.open("a") as log:
                        log.write(f"http {self.path}\n")
                    status, content_type, body = stand_in.respond(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def respond(self, path: str) -> tuple[int, str, bytes]:
        if path == "/health":
            self.health_polls += 1
            ollama = "connected" if self.health_polls > self.connected_after else "disconnected"
            body = {"status": "ok", "ollama": ollama, "timestamp": 1700000000000}
            return 200, "application/json", json.dumps(body, separators=(",", ":")).encode()
        if path == "/public-key":
            return 200, "application/json", json.dumps({"public_key": self.public_key}).encode()
        if path == "/attestation/raw":
            return 200, "application/octet-stream", DOCUMENT
        return 404, "text/plain", b"not found"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Create the stand-in CLIs, a compose file with a real-looking digest, and the env."""
    bin_dir = tmp_path / "bin"
    state = tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, script in (("oyster-cvm", OYSTER_SCRIPT), ("sui", SUI_SCRIPT)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)

    compose = (ROOT / "docker-compose.yml").read_text().replace("0" * 64, REAL_DIGEST.removeprefix("sha256:"))
    (tmp_path / "docker-compose.yml").write_text(compose)

    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_EVENTS", str(tmp_path / "events.log"))
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("FAKE_JOB_ID", JOB_ID)
    monkeypatch.setenv("FAKE_PCR0", deploy_pcr0())
    monkeypatch.setenv(deploy.WALLET_KEY_ENV, WALLET_KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    (tmp_path / "events.log").touch()
    return tmp_path


def deploy_pcr0() -> str:
    from evm_score_oracle.attestation import verify_attestation

    return verify_attestation(DOCUMENT).pcrs[0].hex()


@pytest.fixture
def enclave(workspace: Path):
    stand_in = EnclaveStandIn(workspace / "events.log", connected_after=2, public_key=ORACLE_KEY)
    stand_in.thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def arguments(workspace: Path, enclave: EnclaveStandIn, *extra: str) -> list[str]:
    return [
        "--compose-file", str(workspace / "docker-compose.yml"),
        "--operator", "0x0000000000000000000000000000000000000001",
        "--oracle-url", enclave.url,
        "--attestation-url", f"{enclave.url}/attestation/raw",
        "--health-attempts", "3", "--health-interval", "0",
        "--ollama-attempts", "5", "--ollama-interval", "0",
        "--max-age", "0",
        "--sui-package", "0xaa", "--enclave-config", "0xbb", "--enclave-cap", "0xcc",
        "--enclave-type", "0xdd::oracle::ORACLE",
        "--record", str(workspace / "deployment.env"),
        *extra,
    ]


def events(workspace: Path) -> list[str]:
    return (workspace / "events.log").read_text().splitlines()


def record(workspace: Path) -> dict[str, str]:
    lines = (workspace / "deployment.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


# Full run


def test_deploy_runs_steps_in_order(workspace: Path, enclave: EnclaveStandIn) -> None:
    status = deploy.main(arguments(workspace, enclave))

    assert status == 0
    kinds = [event.split(" ")[0] + " " + event.split(" ")[1] for event in events(workspace)]
    first_sui = kinds.index("sui client")
    assert kinds[0] == "oyster-cvm deploy"
    assert kinds.index("http /attestation/raw") < first_sui
    assert kinds.index("http /public-key") < first_sui
    assert kinds[first_sui:] == ["sui client", "sui client"]
    last_health = len(kinds) - 1 - kinds[::-1].index("http /health")
    assert last_health < kinds.index("http /attestation/raw")
    # One basic check (which returns "disconnected"), then Ollama polls until connected.
    assert enclave.health_polls == 3


def test_deploy_sui_call_shapes(workspace: Path, enclave: EnclaveStandIn) -> None:
    deploy.main(arguments(workspace, enclave))

    update, register = [event for event in events(workspace) if event.startswith("sui ")]
    assert update.startswith("sui client call --package 0xaa --module enclave --function update_pcrs")
    assert "--type-args 0xdd::oracle::ORACLE --args 0xbb 0xcc 0x" + deploy_pcr0() in update
    assert len(update.split("--args ")[1].split(" --gas-budget")[0].split()) == 5
    assert register.startswith("sui client ptb --assign document vector[")
    assert "0x2::nitro_attestation::load_nitro_attestation document @0x6" in register
    assert "0xaa::enclave::register_enclave<0xdd::oracle::ORACLE> @0xbb attestation" in register


def test_deploy_passes_pcr16_when_asked(workspace: Path, enclave: EnclaveStandIn) -> None:
    deploy.main(arguments(workspace, enclave, "--with-pcr16"))

    update = next(event for event in events(workspace) if "update_pcrs" in event)
    assert len(update.split("--args ")[1].split(" --gas-budget")[0].split()) == 6


def test_deploy_oyster_arguments(workspace: Path, enclave: EnclaveStandIn) -> None:
    deploy.main(arguments(workspace, enclave, "--arch", "amd64", "--duration-minutes", "90"))

    command = events(workspace)[0]
    assert "--arch amd64" in command
    assert "--duration-in-minutes 90" in command
    assert f"--docker-compose {workspace / 'docker-compose.yml'}" in command
    assert "--operator 0x0000000000000000000000000000000000000001" in command


def test_deploy_wallet_key_never_echoed(
    workspace: Path, enclave: EnclaveStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy.main(arguments(workspace, enclave))

    output = capsys.readouterr()
    assert WALLET_KEY not in output.out + output.err
    assert WALLET_KEY not in (workspace / "events.log").read_text()
    assert WALLET_KEY not in (workspace / "deployment.env").read_text()
    assert (workspace / "state" / "key-seen").read_text() == WALLET_KEY


def test_deploy_writes_record(workspace: Path, enclave: EnclaveStandIn) -> None:
    deploy.main(arguments(workspace, enclave))

    values = record(workspace)
    assert values["JOB_ID"] == JOB_ID
    assert values["IP"] == "127.0.0.1"
    assert values["IMAGE"] == f"majus/evm-score-oracle@{REAL_DIGEST}"
    assert values["PUBLIC_KEY"] == ORACLE_KEY
    assert values["PCR0"] == deploy_pcr0()
    assert values["OLLAMA_READY"] == "yes"
    assert values["REGISTER_TX"] == "HBRKnSvFUemgKJfAgZjZbDEjTUxZbX1CSZwAzcNfZh8j"


def test_deploy_accepts_unquoted_job_id(
    workspace: Path, enclave: EnclaveStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OYSTER_MODE", "unquoted")

    assert deploy.main(arguments(workspace, enclave)) == 0
    assert record(workspace)["JOB_ID"] == JOB_ID


def test_deploy_script_entry_point(workspace: Path, enclave: EnclaveStandIn) -> None:
    result = subprocess.run(
        [str(ROOT / "deploy.sh"), *arguments(workspace, enclave, "--skip-register")],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )

    assert result.returncode == 0, result.stderr
    assert "attestation verified" in result.stderr
    assert not [event for event in events(workspace) if event.startswith("sui ")]


def test_deploy_script_hides_httpx_requests(workspace: Path, enclave: EnclaveStandIn) -> None:
    result = subprocess.run(
        [str(ROOT / "deploy.sh"), *arguments(workspace, enclave, "--skip-register")],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )

    assert result.returncode == 0, result.stderr
    assert f"deploy: {enclave.url}/health is up" in result.stderr
    assert "HTTP Request" not in result.stderr


def test_deploy_import_leaves_logging_alone() -> None:
    # Only main() may quiet httpx; importing the module must not change logging.
    code = "import logging, evm_score_oracle.deploy; print(logging.getLogger('httpx').level)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(logging.NOTSET)


def test_deploy_script_missing_compose_file(workspace: Path) -> None:
    missing = workspace / "nonexistent.yml"

    result = subprocess.run(
        [str(ROOT / "deploy.sh"), "--skip-register", "--compose-file", str(missing),
         "--record", str(workspace / "deployment.env")],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deploy: error: ")
    assert str(missing) in lines[0]
    assert events(workspace) == []


# Ollama timeout


def test_ollama_timeout_warns_and_continues(
    workspace: Path, enclave: EnclaveStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    enclave.connected_after = 1000

    status = deploy.main(arguments(workspace, enclave))

    assert status == 0
    warning = " ".join(record.getMessage() for record in caplog.records if record.levelname == "WARNING")
    assert "may still be loading the model" in warning
    assert f"curl -s {enclave.url}/health" in warning
    assert record(workspace)["OLLAMA_READY"] == "no"
    assert enclave.health_polls == 1 + 5


# Failures


def test_deploy_rejects_placeholder_digest(workspace: Path, enclave: EnclaveStandIn) -> None:
    compose = workspace / "docker-compose.yml"
    compose.write_text((ROOT / "docker-compose.yml").read_text())

    status = deploy.main(arguments(workspace, enclave))

    assert status == 1
    assert events(workspace) == []


def test_deploy_rejects_stale_attestation(
    workspace: Path, enclave: EnclaveStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    # The recorded document was signed in December 2024, so --max-age 300 rejects it.
    args = arguments(workspace, enclave)
    args[args.index("--max-age") + 1] = "300"

    status = deploy.main(args)

    assert status == 1
    assert "attestation check failed" in capsys.readouterr().err
    assert not [event for event in events(workspace) if event.startswith("sui ")]


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan", "NaN", "inf", "-inf", "1e999", "soon"])
def test_deploy_rejects_bad_max_age(
    workspace: Path, enclave: EnclaveStandIn, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        deploy.main(arguments(workspace, enclave, f"--max-age={value}"))

    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --max-age" in error
    assert ">= 0" in error
    assert events(workspace) == []


@pytest.mark.parametrize(
    "flag, value, allowed",
    [
        ("--duration-minutes", "-5", ">= 1"),
        ("--duration-minutes", "0", ">= 1"),
        ("--duration-minutes", "1.5", ">= 1"),
        ("--duration-minutes", "abc", ">= 1"),
        ("--health-attempts", "0", ">= 1"),
        ("--health-attempts", "-1", ">= 1"),
        ("--ollama-attempts", "0", ">= 1"),
        ("--health-interval", "-1", ">= 0"),
        ("--health-interval", "nan", ">= 0"),
        ("--health-interval", "inf", ">= 0"),
        ("--ollama-interval", "-3", ">= 0"),
        ("--gas-budget", "-1", ">= 1"),
        ("--gas-budget", "0", ">= 1"),
        ("--gas-budget", "1e8", ">= 1"),
    ],
)
def test_deploy_rejects_bad_numbers(
    workspace: Path, enclave: EnclaveStandIn, capsys: pytest.CaptureFixture[str],
    flag: str, value: str, allowed: str,
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        deploy.main(arguments(workspace, enclave, f"{flag}={value}"))

    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {flag}" in error
    assert allowed in error
    assert events(workspace) == []


@pytest.mark.parametrize("value", ["not-an-ip", "localhost", "999.1.1.1", "127.0.0.1:3000", "", "fe80::1%eth0"])
def test_deploy_rejects_bad_ip(
    workspace: Path, enclave: EnclaveStandIn, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    extra = ("--skip-deploy", "--job-id", JOB_ID, f"--ip={value}")

    with pytest.raises(SystemExit) as exit_info:
        deploy.main(arguments(workspace, enclave, *extra))

    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --ip" in error
    assert "IPv4 or IPv6" in error
    assert events(workspace) == []


def test_deploy_rejects_oyster_host_name(
    workspace: Path, enclave: EnclaveStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_ENCLAVE_IP", "enclave.invalid")

    status = deploy.main(arguments(workspace, enclave))

    assert status == 1
    assert "enclave.invalid" in capsys.readouterr().err
    assert [event.split(" ")[0] for event in events(workspace)] == ["oyster-cvm"]


def test_deploy_unparseable_oyster_output(
    workspace: Path, enclave: EnclaveStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_OYSTER_MODE", "garbled")

    status = deploy.main(arguments(workspace, enclave))

    assert status == 1
    assert "Job created with ID" in capsys.readouterr().err
    assert [event.split(" ")[0] for event in events(workspace)] == ["oyster-cvm"]


def test_deploy_failing_oyster_cli(
    workspace: Path, enclave: EnclaveStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_OYSTER_MODE", "fail")

    status = deploy.main(arguments(workspace, enclave))

    assert status == 1
    assert "exit status 2" in capsys.readouterr().err
    assert len(events(workspace)) == 1


def test_deploy_failing_sui_cli(
    workspace: Path, enclave: EnclaveStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_SUI_MODE", "fail")

    status = deploy.main(arguments(workspace, enclave))

    assert status == 1
    assert "--skip-deploy --job-id ID --ip IP" in capsys.readouterr().err
    assert "PUBLIC_KEY" in record(workspace)


def test_deploy_key_mismatch_stops_before_sui(
    workspace: Path, enclave: EnclaveStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    enclave.public_key = OTHER_KEY

    status = deploy.main(arguments(workspace, enclave))

    assert status == 1
    assert "key binding check failed" in capsys.readouterr().err
    assert not [event for event in events(workspace) if event.startswith("sui ")]


def test_deploy_unhealthy_oracle_stops(
    workspace: Path, enclave: EnclaveStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    args = arguments(workspace, enclave)
    args[args.index("--oracle-url") + 1] = f"{enclave.url}/missing"

    status = deploy.main(args)

    assert status == 1
    assert "--skip-deploy --job-id ID --ip IP" in capsys.readouterr().err
    assert not [event for event in events(workspace) if event.startswith("sui ")]


def test_resume_skips_oyster_deploy(workspace: Path, enclave: EnclaveStandIn) -> None:
    status = deploy.main(arguments(workspace, enclave, "--skip-deploy", "--job-id", JOB_ID, "--ip", "127.0.0.1"))

    assert status == 0
    assert not [event for event in events(workspace) if event.startswith("oyster-cvm")]
    assert len([event for event in events(workspace) if event.startswith("sui ")]) == 2


def test_resume_without_pcr_update(workspace: Path, enclave: EnclaveStandIn) -> None:
    extra = ("--skip-deploy", "--job-id", JOB_ID, "--ip", "127.0.0.1", "--skip-pcr-update")

    assert deploy.main(arguments(workspace, enclave, *extra)) == 0

    sui_calls = [event for event in events(workspace) if event.startswith("sui ")]
    assert len(sui_calls) == 1
    assert sui_calls[0].startswith("sui client ptb")


def test_oyster_verify_pcrs_compared(
    workspace: Path, enclave: EnclaveStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PCR0", "00" * 48)

    status = deploy.main(arguments(workspace, enclave, "--oyster-verify"))

    assert status == 1
    assert not [event for event in events(workspace) if event.startswith("sui ")]


# Units


@pytest.mark.parametrize(
    "output, job_id, ip",
    [
        ('[INFO] Job created with ID: "0xabc"\n[INFO] Enclave is ready! IP address: 13.1.2.3\n', "0xabc", "13.1.2.3"),
        ("Job created with ID: 0xabc\nIP address obtained: 13.1.2.4\n", "0xabc", "13.1.2.4"),
    ],
)
def test_parse_deploy_output_formats(output: str, job_id: str, ip: str) -> None:
    enclave = deploy.parse_deploy_output(output)

    assert enclave.job_id == job_id
    assert enclave.ip == ip


@pytest.mark.parametrize("bad_ip", ["not-an-ip", "300.1.2.3", "enclave.example"])
def test_parse_deploy_output_invalid_ip(bad_ip: str) -> None:
    output = f'Job created with ID: "0xabc"\nEnclave is ready! IP address: {bad_ip}\n'

    with pytest.raises(DeployError, match=re.escape(repr(bad_ip))):
        deploy.parse_deploy_output(output)


def test_parse_deploy_output_ipv6() -> None:
    output = 'Job created with ID: "0xabc"\nEnclave is ready! IP address: 2001:db8::7\n'

    assert deploy.parse_deploy_output(output).ip == "2001:db8::7"


@pytest.mark.parametrize(
    "ip, url",
    [("203.0.113.7", "http://203.0.113.7:3000"), ("2001:db8::7", "http://[2001:db8::7]:3000")],
)
def test_enclave_url_brackets_ipv6(ip: str, url: str) -> None:
    assert deploy.enclave_url(ip, 3000) == url


def test_parser_accepts_boundary_numbers() -> None:
    args = deploy.build_parser().parse_args([
        "--duration-minutes", "1", "--health-attempts", "1", "--ollama-attempts", "1",
        "--health-interval", "0", "--ollama-interval", "0.5", "--max-age", "0", "--gas-budget", "1",
        "--ip", "::1",
    ])

    assert args.duration_minutes == 1
    assert args.health_attempts == 1
    assert args.ollama_attempts == 1
    assert args.health_interval == 0.0
    assert args.ollama_interval == 0.5
    assert args.max_age == 0.0
    assert args.gas_budget == 1
    assert args.ip == "::1"


def test_parse_deploy_output_missing_ip() -> None:
    with pytest.raises(DeployError, match="enclave IP address"):
        deploy.parse_deploy_output('Job created with ID: "0xabc"\n')


@pytest.mark.parametrize("content", [WALLET_KEY, WALLET_KEY + "\n"])
def test_wallet_key_file_accepted(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)

    assert deploy.read_wallet_key(key_file, {}) == WALLET_KEY


@pytest.mark.parametrize("content", ["0x" + WALLET_KEY, WALLET_KEY[:-2], WALLET_KEY + "\n\n", " " + WALLET_KEY, "zz" * 32])
def test_wallet_key_invalid_rejected(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)

    with pytest.raises(DeployError) as caught:
        deploy.read_wallet_key(key_file, {})
    assert content.strip() not in str(caught.value)


@pytest.mark.parametrize("content", [b"\xff\xfe", b"ab" * 31 + b"a\xff", "é".encode("latin-1") * 64])
def test_wallet_key_non_utf8_rejected(tmp_path: Path, content: bytes) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(content)

    with pytest.raises(DeployError, match="invalid wallet key") as caught:
        deploy.read_wallet_key(key_file, {})
    message = str(caught.value)
    for leaked in ("\\xff", "0xff", "\xff", "\xe9", "\ufffd", "ab" * 31):
        assert leaked not in message


def test_wallet_key_from_environment() -> None:
    assert deploy.read_wallet_key(None, {deploy.WALLET_KEY_ENV: WALLET_KEY}) == WALLET_KEY


def test_wallet_key_missing() -> None:
    with pytest.raises(DeployError, match=deploy.WALLET_KEY_ENV):
        deploy.read_wallet_key(None, {})


def test_rewrite_digest_changes_only_image(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    original = (ROOT / "docker-compose.yml").read_text()
    compose.write_text(original)

    image = deploy.rewrite_image_digest(compose, REAL_DIGEST)

    rewritten = compose.read_text()
    assert image == f"majus/evm-score-oracle@{REAL_DIGEST}"
    assert deploy.check_image_digest(rewritten) == image
    assert rewritten == original.replace("0" * 64, REAL_DIGEST.removeprefix("sha256:"))


def test_rewrite_digest_rejects_bad_digest(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text((ROOT / "docker-compose.yml").read_text())

    with pytest.raises(DeployError, match="invalid image digest"):
        deploy.rewrite_image_digest(compose, "sha256:1234")


def test_rewrite_digest_keeps_crlf_bytes(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    original = (ROOT / "docker-compose.yml").read_bytes().replace(b"\n", b"\r\n")
    compose.write_bytes(original)

    deploy.rewrite_image_digest(compose, REAL_DIGEST)

    expected = original.replace(b"0" * 64, REAL_DIGEST.removeprefix("sha256:").encode())
    assert compose.read_bytes() == expected


def test_read_compose_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"

    with pytest.raises(DeployError, match=re.escape(str(missing))):
        deploy.read_compose_file(missing)


def test_committed_compose_has_placeholder() -> None:
    with pytest.raises(DeployError, match="placeholder"):
        deploy.check_image_digest((ROOT / "docker-compose.yml").read_text())
