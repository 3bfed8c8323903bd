"""The ``evm-score-oracle`` command line, run as a real process."""

from __future__ import annotations

import json
import stat

import pytest

from evm_score_oracle.signing import OracleKey

from support.processes import Oracle, run_cli, start_replay
from support.upstreams import refused_port

RETAIL_WALLET = "0xc38b0528097b8076048bedf4330644f068cec2e6"


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory):
    replay, url = start_replay(tmp_path_factory.mktemp("replay"))
    yield url
    replay.stop()


@pytest.fixture()
def key_file(tmp_path):
    path = tmp_path / "ecdsa.sec"
    result = run_cli("keygen", str(path))
    assert result.returncode == 0, result.stderr
    return path


def v1_env(replay_url: str, key_file) -> dict[str, str]:
    return {
        "ORACLE_KEY_FILE": str(key_file),
        "EXPLORER_URL": replay_url + "/api",
        "EXPLORER_CHAIN_ID": "",
        "EXPLORER_SOURCES": "txlist",
        "OLLAMA_HOST": f"http://127.0.0.1:{refused_port()}",
    }


@pytest.fixture()
def signed_answer(replay_url, key_file, tmp_path):
    result = run_cli("score", RETAIL_WALLET, "--no-llm", env=v1_env(replay_url, key_file))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "score.json"
    path.write_text(result.stdout)
    return path


# keygen


def test_keygen_writes_private_key(key_file):
    assert key_file.stat().st_size == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_keygen_refuses_overwrite(key_file):
    before = key_file.read_bytes()

    result = run_cli("keygen", str(key_file))

    assert result.returncode == 2
    assert "exists already" in result.stderr
    assert key_file.read_bytes() == before


# score


def test_score_prints_signed_rubric_score(signed_answer, key_file):
    answer = json.loads(signed_answer.read_text())

    assert answer["wallet_address"] == RETAIL_WALLET
    assert answer["metadata"]["method"] == "rubric"
    assert answer["score"] == answer["metadata"]["rubric_score"]


def test_score_falls_back_without_ollama(replay_url, key_file):
    result = run_cli("score", RETAIL_WALLET, env=v1_env(replay_url, key_file))

    assert result.returncode == 0, result.stderr
    metadata = json.loads(result.stdout)["metadata"]
    assert metadata["method"] == "rubric_fallback"
    assert metadata["fallback_reason"]


def test_score_rejects_bad_address(replay_url, key_file):
    result = run_cli("score", "0x1234", "--no-llm", env=v1_env(replay_url, key_file))

    assert result.returncode == 2
    assert "invalid address '0x1234'" in result.stderr
    assert "Traceback" not in result.stderr


def test_score_reports_upstream_failure(key_file):
    env = {"ORACLE_KEY_FILE": str(key_file), "EXPLORER_URL": f"http://127.0.0.1:{refused_port()}/api", "EXPLORER_RETRIES": "0"}

    result = run_cli("score", RETAIL_WALLET, "--no-llm", env=env)

    assert result.returncode == 1
    assert "no score signed: explorer failed" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EXPLORER_SOURCES": "txlist,logs"}, "EXPLORER_SOURCES: invalid explorer sources"),
        ({"EXPLORER_URL": "ftp://example"}, "EXPLORER_URL: invalid URL 'ftp://example'"),
        ({"EXPLORER_CHAIN_ID": "mainnet"}, "EXPLORER_CHAIN_ID: invalid chain id 'mainnet'"),
        ({"ORACLE_PORT": "70000"}, "ORACLE_PORT"),
        ({"SCORE_LLM_BAND": "-5"}, "SCORE_LLM_BAND"),
        ({"EXPLORER_CHAIN_ID": "\u00b2"}, "EXPLORER_CHAIN_ID: invalid chain id"),
        ({"OLLAMA_MODEL": ""}, "OLLAMA_MODEL"),
        ({"EXPLORER_TIMEOUT_S": "abc"}, "EXPLORER_TIMEOUT_S: Input should be a valid number, unable to parse string as a number, got 'abc'"),
    ],
)
def test_score_rejects_bad_setting(key_file, env, message):
    result = run_cli("score", RETAIL_WALLET, "--no-llm", env={"ORACLE_KEY_FILE": str(key_file), **env})

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_score_missing_key_file(tmp_path):
    result = run_cli("score", RETAIL_WALLET, "--no-llm", env={"ORACLE_KEY_FILE": str(tmp_path / "none.sec")})

    assert result.returncode == 2
    assert "none.sec not found" in result.stderr


# verify


def test_verify_valid_answer(signed_answer, key_file):
    public_key = OracleKey.load(key_file).public_key_hex

    result = run_cli("verify", str(signed_answer), "--public-key", public_key)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("valid:")


def test_verify_reads_standard_input(signed_answer, key_file):
    public_key = OracleKey.load(key_file).public_key_hex

    result = run_cli("verify", "-", "--public-key", public_key, stdin=signed_answer.read_text())

    assert result.returncode == 0, result.stderr


def test_verify_fetches_key_from_oracle(signed_answer, key_file, tmp_path):
    oracle = Oracle(tmp_path, key_file, {"OLLAMA_HOST": f"http://127.0.0.1:{refused_port()}"}).wait_until_up()
    try:
        result = run_cli("verify", str(signed_answer), "--oracle", oracle.url)
    finally:
        oracle.stop()

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("field", ["score", "timestamp_ms", "wallet_address"])
def test_verify_detects_tampering(signed_answer, key_file, field):
    answer = json.loads(signed_answer.read_text())
    answer[field] = answer[field] + 1 if isinstance(answer[field], int) else answer[field].replace("c", "d", 1)
    signed_answer.write_text(json.dumps(answer))

    result = run_cli("verify", str(signed_answer), "--public-key", OracleKey.load(key_file).public_key_hex)

    assert result.returncode == 1
    assert result.stderr.startswith("invalid:")


def test_verify_detects_other_key(signed_answer):
    result = run_cli("verify", str(signed_answer), "--public-key", OracleKey.generate().public_key_hex)

    assert result.returncode == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"score": "1", "timestamp_ms": 1, "wallet_address": "0x", "signature": "00"}', "field 'score'"),
        ('{"score": 1, "timestamp_ms": -1, "wallet_address": "0x", "signature": "00"}', "field 'timestamp_ms'"),
        ('{"score": 1, "timestamp_ms": 1, "signature": "00"}', "field 'wallet_address'"),
        ('{"score": 1, "timestamp_ms": 1, "wallet_address": "0x", "signature": "zz"}', "not hex"),
    ],
)
def test_verify_unusable_input(tmp_path, content, message):
    path = tmp_path / "answer.json"
    path.write_text(content)

    result = run_cli("verify", str(path), "--public-key", OracleKey.generate().public_key_hex)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_binary_file(tmp_path):
    path = tmp_path / "answer.json"
    path.write_bytes(b"\xff\xfe\x00garbage")

    result = run_cli("verify", str(path), "--public-key", OracleKey.generate().public_key_hex)

    assert result.returncode == 2
    assert "not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_empty_public_key(signed_answer):
    result = run_cli("verify", str(signed_answer), "--public-key", "")

    assert result.returncode == 2
    assert "invalid public key" in result.stderr


def test_verify_missing_file(tmp_path):
    result = run_cli("verify", str(tmp_path / "absent.json"), "--public-key", "02" * 33)

    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_verify_unreachable_oracle(signed_answer):
    result = run_cli("verify", str(signed_answer), "--oracle", f"http://127.0.0.1:{refused_port()}")

    assert result.returncode == 2
    assert "cannot fetch the public key" in result.stderr


# replay-explorer


def test_replay_rejects_bad_port(tmp_path):
    result = run_cli("replay-explorer", str(tmp_path), "--port", "99999", timeout=30)

    assert result.returncode == 2
    assert "invalid port '99999'" in result.stderr
    assert "Traceback" not in result.stderr


def test_secret_setting_not_echoed(key_file):
    env = {"ORACLE_KEY_FILE": str(key_file), "EXPLORER_API_KEY": "s3cret-value", "EXPLORER_TIMEOUT_S": "abc"}

    result = run_cli("score", RETAIL_WALLET, "--no-llm", env=env)

    assert result.returncode == 2
    assert "s3cret-value" not in result.stderr


def test_keygen_into_directory(tmp_path):
    result = run_cli("keygen", str(tmp_path))

    assert result.returncode == 2
    assert "is a directory" in result.stderr


def test_replay_rejects_missing_directory(tmp_path):
    result = run_cli("replay-explorer", str(tmp_path / "absent"), "--port", "0", timeout=30)

    assert result.returncode == 2
    assert "absent" in result.stderr
    assert "Traceback" not in result.stderr
