"""Tests for docker-compose.yml: its structure and its shell snippets, run for real.

The snippets run under the host's `sh` (dash, like the ollama image's /bin/sh)
with a stand-in `ollama` on PATH that mimics the 0.5.4 CLI's exit codes.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from support.fake_ollama import FakeOllama

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
SERVICES = ("evm-score-oracle", "ollama_server", "ollama_model")

# Upper bound for any wait on a background shell. With the stand-in, the
# snippets finish in well under a second.
WAIT_LIMIT_S = 20.0


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture
def fake_ollama(tmp_path: Path) -> FakeOllama:
    return FakeOllama(tmp_path)


def unescape_dollars(text: str) -> str:
    """Apply Compose's interpolation to a string without variables: `$$` -> `$`."""
    assert "$" not in text.replace("$$", ""), f"unescaped $ in {text!r}"
    return text.replace("$$", "$")


def healthcheck_script(service: dict) -> str:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert len(test) == 2, f"CMD-SHELL runs only its first string, got {test!r}"
    return unescape_dollars(test[1])


def run_shell(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=WAIT_LIMIT_S
    )


def wait_until(condition, description: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_LIMIT_S} s waiting for {description}")
        time.sleep(0.02)


def start_model_loader(compose: dict, fake: FakeOllama, log_dir: Path) -> subprocess.Popen:
    """Start ollama_model's entrypoint plus command the way Docker joins them."""
    service = compose["services"]["ollama_model"]
    entrypoint = [unescape_dollars(part) for part in service["entrypoint"]]
    command = unescape_dollars(service["command"]).split()
    env = fake.environment(OLLAMA_PULL_RETRY_S="0.05")
    stdout = (log_dir / "loader.out").open("w")
    stderr = (log_dir / "loader.err").open("w")
    return subprocess.Popen(entrypoint + command, env=env, stdout=stdout, stderr=stderr)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=WAIT_LIMIT_S)


def startup_order(services: dict) -> list[str]:
    """Order services so that each comes after all of its depends_on entries."""
    order: list[str] = []
    remaining = dict(services)
    while remaining:
        ready = sorted(
            name
            for name, service in remaining.items()
            if all(dep in order for dep in service.get("depends_on", {}))
        )
        assert ready, f"dependency cycle among {sorted(remaining)}"
        order.extend(ready)
        for name in ready:
            del remaining[name]
    return order


# Schema


def test_compose_file_matches_official_schema(compose: dict) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())

    # The file declares draft-07 without the trailing "#", so name the draft.
    jsonschema.Draft7Validator(schema).validate(compose)


def test_compose_schema_rejects_unknown_key(compose: dict) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["ollama_server"]["network"] = "host"

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


# Service definitions


def test_service_definitions_three_services(compose: dict) -> None:
    assert sorted(compose["services"]) == sorted(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_service_definitions_host_network(compose: dict, name: str) -> None:
    assert compose["services"][name]["network_mode"] == "host"


@pytest.mark.parametrize("name", SERVICES)
def test_service_definitions_init(compose: dict, name: str) -> None:
    assert compose["services"][name]["init"] is True


@pytest.mark.parametrize("name", SERVICES)
def test_service_definitions_restart_policy(compose: dict, name: str) -> None:
    assert compose["services"][name]["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", SERVICES)
def test_service_definitions_no_port_mappings(compose: dict, name: str) -> None:
    # Oyster's Docker runs without iptables, so `ports:` would silently do nothing.
    assert "ports" not in compose["services"][name]


# Ollama server service


def test_ollama_server_service_image(compose: dict) -> None:
    image = compose["services"]["ollama_server"]["image"]

    assert image == "ollama/ollama:0.5.4" or image.startswith("ollama/ollama:0.5.4@sha256:")


def test_ollama_server_service_health_command(compose: dict) -> None:
    script = healthcheck_script(compose["services"]["ollama_server"])

    assert "ollama --version" in script
    assert "ollama list" in script


def test_ollama_server_service_health_timing(compose: dict) -> None:
    healthcheck = compose["services"]["ollama_server"]["healthcheck"]

    assert healthcheck["interval"] == "10s"
    assert healthcheck["start_period"] == "30s"


def test_ollama_server_service_loopback_only(compose: dict) -> None:
    environment = compose["services"]["ollama_server"]["environment"]

    assert environment["OLLAMA_HOST"] == "127.0.0.1:11434"


def test_ollama_server_service_health_fails_while_down(fake_ollama: FakeOllama, compose: dict) -> None:
    script = healthcheck_script(compose["services"]["ollama_server"])
    fake_ollama.set_server_down(True)

    result = run_shell(script, fake_ollama.environment())

    assert result.returncode != 0
    assert "--version" in fake_ollama.calls()


def test_ollama_server_service_health_passes_when_up(fake_ollama: FakeOllama, compose: dict) -> None:
    script = healthcheck_script(compose["services"]["ollama_server"])
    fake_ollama.set_server_down(False)

    result = run_shell(script, fake_ollama.environment())

    assert result.returncode == 0
    assert fake_ollama.calls() == ["--version", "list"]


# Model loader service


def test_model_loader_service_image(compose: dict) -> None:
    assert compose["services"]["ollama_model"]["image"] == compose["services"]["ollama_server"]["image"]


def test_model_loader_service_waits_for_server(compose: dict) -> None:
    depends_on = compose["services"]["ollama_model"]["depends_on"]

    assert depends_on == {"ollama_server": {"condition": "service_healthy"}}


def test_model_loader_service_command(compose: dict) -> None:
    assert compose["services"]["ollama_model"]["command"] == "pull llama3.2:1b"


def test_model_loader_service_health_command(compose: dict) -> None:
    script = healthcheck_script(compose["services"]["ollama_model"])

    assert script == "ollama list | grep llama3.2:1b"


def test_model_loader_service_start_period(compose: dict) -> None:
    assert compose["services"]["ollama_model"]["healthcheck"]["start_period"] == "3m"


def test_model_loader_service_loopback_client(compose: dict) -> None:
    environment = compose["services"]["ollama_model"]["environment"]

    assert environment["OLLAMA_HOST"] == "127.0.0.1:11434"


def test_model_loader_service_retries_then_stays_alive(
    fake_ollama: FakeOllama, compose: dict, tmp_path: Path
) -> None:
    health = healthcheck_script(compose["services"]["ollama_model"])
    fake_ollama.fail_pulls(3)
    loader = start_model_loader(compose, fake_ollama, tmp_path)
    try:
        assert run_shell(health, fake_ollama.environment()).returncode != 0

        wait_until(fake_ollama.has_model, "the stand-in pull to succeed")
        wait_until(lambda: "keeping the container alive" in (tmp_path / "loader.out").read_text(),
                   "the loader to report success")
        wait_until(lambda: Path(f"/proc/{loader.pid}/cmdline").read_bytes().startswith(b"sleep"),
                   "the loader to exec sleep")

        assert loader.poll() is None
        assert Path(f"/proc/{loader.pid}/cmdline").read_bytes() == b"sleep\0infinity\0"
        assert fake_ollama.calls().count("pull llama3.2:1b") == 4
        assert run_shell(health, fake_ollama.environment()).returncode == 0
    finally:
        stop(loader)


def test_model_loader_service_logs_failed_pulls(
    fake_ollama: FakeOllama, compose: dict, tmp_path: Path
) -> None:
    fake_ollama.fail_pulls(2)
    loader = start_model_loader(compose, fake_ollama, tmp_path)
    try:
        wait_until(fake_ollama.has_model, "the stand-in pull to succeed")
        wait_until(lambda: "keeping the container alive" in (tmp_path / "loader.out").read_text(),
                   "the loader to report success")
    finally:
        stop(loader)

    errors = (tmp_path / "loader.err").read_text()
    assert errors.count("ollama pull llama3.2:1b: failed, retrying") == 2
    assert "could not connect to ollama app" in errors


def test_model_loader_service_health_fails_while_server_down(
    fake_ollama: FakeOllama, compose: dict
) -> None:
    script = healthcheck_script(compose["services"]["ollama_model"])
    (fake_ollama.state_dir / "model").write_text("llama3.2:1b\n")
    fake_ollama.set_server_down(True)

    assert run_shell(script, fake_ollama.environment()).returncode != 0


# Oracle service


def test_oracle_service_dependencies_wait_for_model(compose: dict) -> None:
    depends_on = compose["services"]["evm-score-oracle"]["depends_on"]

    assert depends_on == {"ollama_model": {"condition": "service_healthy"}}


def test_oracle_service_dependencies_ollama_host(compose: dict) -> None:
    environment = compose["services"]["evm-score-oracle"]["environment"]

    assert environment["OLLAMA_HOST"] == "http://127.0.0.1:11434"


def test_oracle_service_dependencies_key_volume(compose: dict) -> None:
    assert compose["services"]["evm-score-oracle"]["volumes"] == ["/app/ecdsa.sec:/app/ecdsa.sec:ro"]


def test_oracle_service_dependencies_image_pattern(compose: dict) -> None:
    image = compose["services"]["evm-score-oracle"]["image"]

    assert re.fullmatch(r"majus/evm-score-oracle@sha256:[0-9a-f]{64}", image)


# Startup sequence


def test_startup_sequence_order(compose: dict) -> None:
    order = startup_order(compose["services"])

    assert order == ["ollama_server", "ollama_model", "evm-score-oracle"]


def test_startup_sequence_waits_for_health(compose: dict) -> None:
    for name, service in compose["services"].items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_startup_sequence_dependencies_have_checks(compose: dict) -> None:
    services = compose["services"]
    dependencies = {dep for service in services.values() for dep in service.get("depends_on", {})}

    for name in dependencies:
        assert "healthcheck" in services[name], name


# Health check validation


@pytest.mark.parametrize("name", ["ollama_server", "ollama_model"])
def test_health_check_validation_retry_settings(compose: dict, name: str) -> None:
    healthcheck = compose["services"][name]["healthcheck"]

    assert healthcheck["interval"] == "10s"
    assert healthcheck["retries"] >= 3
    assert "timeout" in healthcheck


@pytest.mark.parametrize("name", ["ollama_server", "ollama_model"])
def test_health_check_validation_single_shell_string(compose: dict, name: str) -> None:
    test = compose["services"][name]["healthcheck"]["test"]

    assert test[0] == "CMD-SHELL"
    assert len(test) == 2


def test_health_check_validation_pull_keeps_checking(compose: dict) -> None:
    # A container that exits ends its health checks, which fails the dependency.
    entrypoint = compose["services"]["ollama_model"]["entrypoint"]
    script = unescape_dollars(entrypoint[2])

    assert entrypoint[:2] == ["/bin/sh", "-c"]
    assert script.rstrip().endswith("exec sleep infinity")
