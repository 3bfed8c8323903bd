"""The HTTP API of a real ``evm-score-oracle serve`` process, fed by replayed real wallets.

No Ollama answers in these tests (OLLAMA_HOST points at a closed port), so every
score is the rubric score with ``method`` ``rubric_fallback``; the model path is
tested against a real small model in test_llm_integration.py.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest

from evm_score_oracle.signing import OracleKey, verify_score, write_new_key

from support.processes import Oracle, start_replay
from support.upstreams import Canned, ScriptedUpstream, refused_port

API_KEY = "SECRET-test-api-key-7f3a"

# (oracle profile, address, note) for every wallet recorded with full histories.
RECORDED_WALLETS = [
    ("v1_txlist", "0xc38b0528097b8076048bedf4330644f068cec2e6", "retail DeFi user, 75 txs"),
    ("v1_txlist", "0x8b99407a4395714b706415277f17b4d549608afe", "no transactions"),
    ("v2_all", "0x3C69Bc9B9681683890ad82953Fe67d13Cd91D5EE", "balance but no transactions"),
    # Recorded as 0x6c66149E65c517605e0a2e4F707550ca342f9c1B, whose mixed case fails EIP-55.
    ("v2_all", "0x6c66149e65c517605e0a2e4f707550ca342f9c1b", "completely empty"),
    ("v2_lists", "0xb8553D9ee35dd23BB96fbd679E651B929821969B", "DeFi and bridge user"),
    ("v2_lists", "0xaFB7ed3beBE50E0b62Fa862FAba93e7A46e59cA7", "old dormant EOA, 11 txs"),
    ("v2_lists", "0x4193122032b38236825BBa166F42e54fc3F4A1EE", "old tiny EOA, 3 txs"),
    ("v2_lists", "0x014cd0535b2Ea668150a681524392B7633c8681c", "token transfers only"),
    ("v2_txlist", "0x95222290DD7278Aa3Ddd389Cc1E1d165CC4BAfe5", "active wallet probe"),
    ("v2_txlist", "0x725E35e01bbEDadd6ac13cE1c4a98bA4Cf00dF21", "active wallet probe"),
    ("chain_100", "0xc37b40ABdB939635068d3c5f13E7faF686F03B65", "multichain EOA on Gnosis"),
]


def profiles(replay_url: str) -> dict[str, dict[str, str]]:
    """Return oracle environments, one per recording layout."""
    v1 = replay_url + "/api"
    v2 = replay_url + "/v2/api"
    return {
        "v1_txlist": {"EXPLORER_URL": v1, "EXPLORER_CHAIN_ID": "", "EXPLORER_SOURCES": "txlist"},
        "v2_all": {"EXPLORER_URL": v2, "EXPLORER_CHAIN_ID": "1"},
        "v2_lists": {"EXPLORER_URL": v2, "EXPLORER_SOURCES": "txlist,txlistinternal,tokentx"},
        "v2_txlist": {"EXPLORER_URL": v2, "EXPLORER_SOURCES": "txlist"},
        "chain_100": {"EXPLORER_URL": v2, "EXPLORER_CHAIN_ID": "100", "EXPLORER_SOURCES": "txlist"},
        "chain_56": {"EXPLORER_URL": v2, "EXPLORER_CHAIN_ID": "56", "EXPLORER_SOURCES": "txlist"},
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api")


@pytest.fixture(scope="module")
def key_file(workdir) -> Path:
    path = workdir / "ecdsa.sec"
    write_new_key(path)
    return path


@pytest.fixture(scope="module")
def oracles(workdir, key_file):
    replay, replay_url = start_replay(workdir)
    common = {"OLLAMA_HOST": f"http://127.0.0.1:{refused_port()}", "EXPLORER_API_KEY": API_KEY}
    running = {
        name: Oracle(workdir, key_file, {**common, **env}) for name, env in profiles(replay_url).items()
    }
    try:
        for oracle in running.values():
            oracle.wait_until_up()
        yield running
    finally:
        for oracle in running.values():
            oracle.stop()
        replay.stop()


def check_signed(answer: dict, public_key: str) -> None:
    verify_score(
        public_key,
        score=answer["score"],
        wallet_address=answer["wallet_address"],
        timestamp_ms=answer["timestamp_ms"],
        signature_hex=answer["signature"],
    )


# /health and /public-key


def test_health_degraded_without_ollama(oracles):
    response = httpx.get(oracles["v2_txlist"].url + "/health", timeout=10)

    assert response.status_code == 200
    assert '"ollama":"unavailable"' in response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert "unreachable" in body["detail"]
    assert isinstance(body["timestamp"], int)


def test_health_body_is_compact(oracles):
    text = httpx.get(oracles["v2_txlist"].url + "/health", timeout=10).text

    assert ": " not in text
    assert ", " not in text


def test_health_answers_when_ollama_hangs(workdir, key_file):
    # A listening socket that never accepts: connections succeed, answers never come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        ollama_url = "http://127.0.0.1:%d" % silent.getsockname()[1]
        oracle = Oracle(workdir, key_file, {"OLLAMA_HOST": ollama_url}).wait_until_up()
        try:
            body = httpx.get(oracle.url + "/health", timeout=10).json()
        finally:
            oracle.stop()

    assert body["ollama"] == "unavailable"
    assert "did not answer within 2 s" in body["detail"]


def test_public_key_matches_key_file(oracles, key_file):
    body = httpx.get(oracles["v2_txlist"].url + "/public-key", timeout=10).json()

    assert body["public_key"] == OracleKey.load(key_file).public_key_hex
    assert len(bytes.fromhex(body["public_key"])) == 33


# /score on every recorded wallet


@pytest.mark.parametrize(("profile", "address", "note"), RECORDED_WALLETS, ids=[w[2] for w in RECORDED_WALLETS])
def test_score_recorded_wallet(oracles, key_file, profile, address, note):
    oracle = oracles[profile]

    response = httpx.get(oracle.url + "/score", params={"address": address}, timeout=30)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["wallet_address"] == address.lower()
    assert 0 <= answer["score"] <= 1000
    check_signed(answer, OracleKey.load(key_file).public_key_hex)

    metadata = answer["metadata"]
    assert metadata["method"] == "rubric_fallback"
    assert metadata["rubric_score"] == answer["score"]
    assert metadata["as_of"] == answer["timestamp_ms"]
    assert set(metadata["dimensions"]) == {"activity", "maturity", "diversity", "risk", "value"}
    assert sum(metadata["dimensions"].values()) == answer["score"]
    assert metadata["rubric_version"]
    assert metadata["features"]
    assert metadata["sources"]


def test_score_post_matches_get_shape(oracles, key_file):
    oracle = oracles["v1_txlist"]
    address = "0xc38b0528097b8076048bedf4330644f068cec2e6"

    response = httpx.post(oracle.url + "/score", json={"address": address}, timeout=30)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"score", "wallet_address", "timestamp_ms", "signature", "metadata"}
    check_signed(answer, OracleKey.load(key_file).public_key_hex)


def test_busier_wallet_scores_higher(oracles):
    busy = httpx.get(oracles["v1_txlist"].url + "/score", params={"address": RECORDED_WALLETS[0][1]}, timeout=30)
    empty = httpx.get(oracles["v1_txlist"].url + "/score", params={"address": RECORDED_WALLETS[1][1]}, timeout=30)

    assert busy.json()["score"] > empty.json()["score"]


def test_checksummed_address_signed_lower_case(oracles, key_file):
    address = "0x95222290DD7278Aa3Ddd389Cc1E1d165CC4BAfe5"

    answer = httpx.get(oracles["v2_txlist"].url + "/score", params={"address": address}, timeout=30).json()

    assert answer["wallet_address"] == address.lower()
    check_signed(answer, OracleKey.load(key_file).public_key_hex)


# Caller errors


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("0x1234", "expected 0x followed by 40 hex digits"),
        ("0x95222290DD7278Aa3Ddd389Cc1E1d165CC4BAfE5", "EIP-55"),
        ("hello", "expected 0x followed by 40 hex digits"),
    ],
)
def test_score_rejects_bad_address(oracles, address, message):
    response = httpx.get(oracles["v2_txlist"].url + "/score", params={"address": address}, timeout=30)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_address"
    assert message in body["detail"]
    assert address in body["detail"]


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"method": "GET", "url": "/score"}, 422),
        ({"method": "GET", "url": "/score", "params": {"address": "0x" + "a" * 200}}, 422),
        ({"method": "POST", "url": "/score", "json": {}}, 422),
        ({"method": "POST", "url": "/score", "json": {"address": 5}}, 422),
        ({"method": "POST", "url": "/score", "json": {"address": "0x1", "extra": 1}}, 422),
        ({"method": "POST", "url": "/score", "content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
    ],
)
def test_score_rejects_malformed_request(oracles, request_kwargs, status):
    kwargs = dict(request_kwargs)
    url = oracles["v2_txlist"].url + kwargs.pop("url")

    response = httpx.request(url=url, timeout=30, **kwargs)

    assert response.status_code == status
    assert response.json()["error"] == "malformed_request"
    assert "Traceback" not in response.text


def test_score_rejects_repeated_address(oracles):
    url = oracles["v2_txlist"].url + "/score?address=zz&address=0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5"

    response = httpx.get(url, timeout=30)

    assert response.status_code == 400
    assert response.json()["error"] == "ambiguous_request"
    assert "2 times" in response.json()["detail"]


def test_score_rejects_address_in_query_and_body(oracles):
    url = oracles["v2_txlist"].url + "/score?address=zz"

    response = httpx.post(url, json={"address": "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5"}, timeout=30)

    assert response.status_code == 400
    assert response.json()["error"] == "ambiguous_request"


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b"[" * 100_000, b'{"address": ' + b"9" * 5000 + b"}"])
def test_score_undecodable_body_is_malformed(oracles, content):
    response = httpx.post(
        oracles["v2_txlist"].url + "/score", content=content, headers={"content-type": "application/json"}, timeout=30
    )

    assert response.status_code == 422
    assert response.json()["error"] == "malformed_request"


def test_score_form_body_names_content_type(oracles):
    response = httpx.post(
        oracles["v2_txlist"].url + "/score", data={"address": "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5"}, timeout=30
    )

    assert response.status_code == 422
    assert "content-type application/json" in response.json()["detail"]
    assert "application/x-www-form-urlencoded" in response.json()["detail"]


def test_docs_pages_not_served(oracles):
    # Their HTML loads scripts from a public CDN.
    assert httpx.get(oracles["v2_txlist"].url + "/docs", timeout=10).status_code == 404
    assert httpx.get(oracles["v2_txlist"].url + "/redoc", timeout=10).status_code == 404


# Upstream failures: nothing is signed


def test_notok_answer_is_bad_gateway(oracles):
    address = "0xc37b40ABdB939635068d3c5f13E7faF686F03B65"

    response = httpx.get(oracles["chain_56"].url + "/score", params={"address": address}, timeout=30)

    assert response.status_code == 502
    body = response.json()
    assert body["upstream"] == "explorer"
    assert "Free API access is not supported for this chain" in body["detail"]
    assert "signature" not in body


def test_unrecorded_wallet_is_bad_gateway(oracles):
    response = httpx.get(oracles["v2_txlist"].url + "/score", params={"address": "0x" + "12" * 20}, timeout=30)

    assert response.status_code == 502
    assert response.json()["upstream"] == "explorer"


def test_missing_source_fails_whole_score(oracles):
    # The retail wallet has no recorded txlistinternal, so the full source set cannot be met.
    response = httpx.get(
        oracles["v2_all"].url + "/score", params={"address": "0xc38b0528097b8076048bedf4330644f068cec2e6"}, timeout=30
    )

    assert response.status_code == 502
    assert "signature" not in response.json()


def start_against(workdir, key_file, explorer_url: str) -> Oracle:
    env = {
        "EXPLORER_URL": explorer_url,
        "EXPLORER_SOURCES": "txlist",
        "EXPLORER_TIMEOUT_S": "0.5",
        "EXPLORER_RETRIES": "0",
        "EXPLORER_API_KEY": API_KEY,
        "OLLAMA_HOST": f"http://127.0.0.1:{refused_port()}",
    }
    return Oracle(workdir, key_file, env).wait_until_up()


def score_once(oracle: Oracle) -> httpx.Response:
    return httpx.get(oracle.url + "/score", params={"address": "0x" + "ab" * 20}, timeout=30)


def test_slow_explorer_is_gateway_timeout(workdir, key_file):
    with ScriptedUpstream([Canned({"status": "1", "message": "OK", "result": []}, delay_s=5)]) as upstream:
        oracle = start_against(workdir, key_file, upstream.url)
        try:
            response = score_once(oracle)
        finally:
            oracle.stop()

    assert response.status_code == 504
    assert response.json()["error"] == "timeout"
    assert response.json()["upstream"] == "explorer"


def test_refused_explorer_is_unavailable(workdir, key_file):
    oracle = start_against(workdir, key_file, f"http://127.0.0.1:{refused_port()}/api")
    try:
        response = score_once(oracle)
    finally:
        oracle.stop()

    assert response.status_code == 503
    assert response.json()["upstream"] == "explorer"


def test_malformed_explorer_json_is_bad_gateway(workdir, key_file):
    with ScriptedUpstream([Canned(raw=b"<html>502 Bad Gateway</html>")]) as upstream:
        oracle = start_against(workdir, key_file, upstream.url)
        try:
            response = score_once(oracle)
            log = oracle.log_text()
        finally:
            oracle.stop()

    assert response.status_code == 502
    assert response.json()["upstream"] == "explorer"
    assert API_KEY not in response.text
    assert API_KEY not in log


# Logs


def test_logs_requests_and_hide_api_key(oracles):
    oracle = oracles["v1_txlist"]
    httpx.get(oracle.url + "/score", params={"address": RECORDED_WALLETS[0][1]}, timeout=30)

    log = oracle.log_text()

    assert re.search(r"GET /score 200 \d+ ms", log)
    assert re.search(r"txlist", log)
    assert "starting oracle" in log
    assert API_KEY not in log


def test_bad_key_file_stops_start(workdir):
    bad_key = workdir / "short.sec"
    bad_key.write_bytes(b"\x07" * 31)

    oracle = Oracle(workdir, bad_key, {})
    code = oracle.popen.wait(timeout=60)
    log = oracle.log_text()
    oracle.stop()

    assert code == 2
    assert "short.sec must hold exactly 32 raw bytes, got 31" in log
    assert "oracle ready" not in log
    assert "Traceback" not in log
    assert ("07" * 31) not in log


def test_openapi_lists_routes(oracles):
    schema = httpx.get(oracles["v2_txlist"].url + "/openapi.json", timeout=10).json()

    assert {"/health", "/public-key", "/score"} <= set(schema["paths"])
    assert set(schema["paths"]["/score"]) == {"get", "post"}


def test_port_in_use_stops_start(workdir, key_file):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        oracle = Oracle(workdir, key_file, {"ORACLE_PORT": str(port)})
        code = oracle.popen.wait(timeout=60)
        log = oracle.log_text()
        oracle.stop()

    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in log
    assert "ORACLE_PORT" in log
    assert "oracle ready" not in log


@pytest.mark.parametrize("host", ["not..a..host", ""])
def test_bad_host_stops_start(workdir, key_file, host):
    oracle = Oracle(workdir, key_file, {"ORACLE_HOST": host})
    code = oracle.popen.wait(timeout=60)
    log = oracle.log_text()
    oracle.stop()

    assert code == 2
    assert "ORACLE_HOST" in log
    assert "Traceback" not in log
