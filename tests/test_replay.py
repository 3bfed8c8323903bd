"""Tests for the replay explorer, queried over loopback HTTP."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from evm_score_oracle.errors import ConfigError
from evm_score_oracle.explorer import row_identity
from evm_score_oracle.replay import ReplayServer, load_recordings

WALLETS = Path(__file__).parent / "data" / "wallets"
RETAIL = "0xc38b0528097b8076048bedf4330644f068cec2e6"
DEFI = "0xb8553d9ee35dd23bb96fbd679e651b929821969b"
DORMANT = "0xafb7ed3bebe50e0b62fa862faba93e7a46e59ca7"
MULTICHAIN = "0xc37b40abdb939635068d3c5f13e7faf686f03b65"


def recorded_interactions() -> list[tuple[str, dict]]:
    cases = []
    for path in sorted(WALLETS.glob("*.json")):
        for interaction in json.loads(path.read_text())["interactions"]:
            cases.append((path.name, interaction))
    return cases


def row_set(rows: list[dict]) -> set[str]:
    """Return the rows as comparable keys, ignoring ``confirmations``, which grows over time."""
    return {row_identity(row) for row in rows}


def block_numbers(rows: list[dict]) -> list[int]:
    return [int(row["blockNumber"]) for row in rows]


@pytest.fixture(scope="module")
def replay():
    with ReplayServer(load_recordings(WALLETS)) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client


def txlist(replay: httpx.Client, address: str, **params: str) -> httpx.Response:
    query = {"module": "account", "action": "txlist", "address": address, **params}
    return replay.get("/api", params=query)


def test_every_recorded_interaction_replays(replay):
    for file_name, interaction in recorded_interactions():
        parts = urlsplit(interaction["url"])
        response = replay.get(f"{parts.path}?{parts.query}&apikey=ignored")
        recorded = interaction["body"]
        context = f"{file_name}: {interaction['url']}"

        assert response.status_code == interaction["status"], context
        answer = response.json()
        if not isinstance(recorded.get("result"), list):
            assert answer == recorded, context
            continue
        assert answer["status"] == recorded["status"], context
        assert answer["message"] == recorded["message"], context
        assert row_set(answer["result"]) == row_set(recorded["result"]), context


def test_page_and_offset_slice_rows(replay):
    everything = txlist(replay, RETAIL).json()["result"]

    page_2 = txlist(replay, RETAIL, page="2", offset="10").json()
    last = txlist(replay, RETAIL, page="8", offset="10").json()
    beyond = txlist(replay, RETAIL, page="9", offset="10").json()

    assert len(everything) == 75
    assert page_2["result"] == everything[10:20]
    assert last["result"] == everything[70:75]
    assert beyond == {"status": "0", "message": "No transactions found", "result": []}


def test_block_filters_accept_both_cases(replay):
    everything = txlist(replay, RETAIL).json()["result"]
    blocks = block_numbers(everything)
    low, high = blocks[20], blocks[40]
    expected = [row for row in everything if low <= int(row["blockNumber"]) <= high]

    lower_case = txlist(replay, RETAIL, startblock=str(low), endblock=str(high)).json()
    camel_case = txlist(replay, RETAIL, startBlock=str(low), endBlock=str(high)).json()

    assert len(expected) >= 21
    assert lower_case["result"] == expected
    assert camel_case["result"] == expected


def test_empty_block_range_returns_no_transactions(replay):
    answer = txlist(replay, RETAIL, startblock="99999990").json()

    assert answer == {"status": "0", "message": "No transactions found", "result": []}


def test_sort_desc_reverses_block_order(replay):
    ascending = txlist(replay, RETAIL, sort="asc").json()["result"]
    descending = txlist(replay, RETAIL, sort="desc").json()["result"]

    assert block_numbers(ascending) == sorted(block_numbers(ascending))
    assert block_numbers(descending) == sorted(block_numbers(ascending), reverse=True)
    assert row_set(descending) == row_set(ascending)


def test_refetch_rows_merge_without_duplicates(replay):
    full_range, refetch = [
        interaction["body"]["result"]
        for name, interaction in recorded_interactions()
        if name == "defi-bridge-user-v2.json"
        and "action=txlist&" in interaction["url"]
    ]

    answer = replay.get("/v2/api", params={
        "chainid": "1", "module": "account", "action": "txlist", "address": DEFI,
    }).json()

    assert len(refetch) < len(full_range)
    assert row_set(answer["result"]) == row_set(full_range) | row_set(refetch)
    assert len(answer["result"]) == len(row_set(full_range) | row_set(refetch))


def test_merge_keeps_rows_only_in_later_fetch(tmp_path):
    early = {"blockNumber": "10", "hash": "0xa"}
    shared = {"blockNumber": "20", "hash": "0xb"}
    late = {"blockNumber": "30", "hash": "0xc"}
    url = "https://explorer.invalid/api?module=account&action=txlist&address=0xAB"
    write_recording(tmp_path / "merge.json", [
        (url + "&startblock=0&endblock=25", {"status": "1", "message": "OK",
                                             "result": [early, shared]}),
        (url + "&startblock=15", {"status": "1", "message": "OK", "result": [shared, late]}),
    ])

    with ReplayServer(load_recordings(tmp_path)) as server:
        answer = httpx.get(server.url + "/api", params={
            "module": "account", "action": "txlist", "address": "0xab",
        }).json()

    assert answer["result"] == [early, shared, late]


def test_notok_answer_replays_as_recorded(replay):
    response = replay.get("/v2/api", params={
        "chainid": "56", "module": "account", "action": "txlist", "address": MULTICHAIN,
        "page": "1", "offset": "1000",
    })

    assert response.status_code == 200
    assert response.json()["message"] == "NOTOK"
    assert "Free API access is not supported" in response.json()["result"]


def test_non_list_result_replays_as_recorded(replay):
    response = replay.get("/v2/api", params={
        "chainid": "1", "module": "account", "action": "balance",
        "address": "0x3c69bc9b9681683890ad82953fe67d13cd91d5ee", "tag": "latest",
    })

    assert response.json() == {"status": "1", "message": "OK", "result": "960071318000000000"}


def test_unrecorded_query_gets_404_naming_key(replay):
    response = txlist(replay, "0x" + "0" * 40)

    assert response.status_code == 404
    assert "0x" + "0" * 40 in response.json()["error"]
    assert response.json()["query"].startswith("/api?")


def test_unrecorded_chain_gets_404(replay):
    response = replay.get("/v2/api", params={
        "chainid": "10", "module": "account", "action": "txlist", "address": DORMANT,
    })

    assert response.status_code == 404
    assert "chainid=10" in response.json()["error"]


def test_address_matches_any_case(replay):
    checksummed = "0xC38B0528097b8076048BEDF4330644F068CEC2E6"

    answer = txlist(replay, checksummed).json()

    assert answer["status"] == "1"
    assert len(answer["result"]) == 75


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"module": "account", "address": RETAIL}, "action"),
        ({"action": "txlist", "address": RETAIL}, "module"),
        ({"module": "account", "action": "txlist", "address": RETAIL, "sort": "up"}, "sort"),
        ({"module": "account", "action": "txlist", "address": RETAIL, "page": "x",
          "offset": "10"}, "page"),
        ({"module": "account", "action": "txlist", "address": RETAIL, "page": "0",
          "offset": "10"}, "page"),
        ({"module": "account", "action": "txlist", "address": RETAIL, "startblock": "-1"},
         "startblock"),
    ],
)
def test_bad_query_gets_400_json(replay, params, fragment):
    response = replay.get("/api", params=params)

    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_post_gets_405_json(replay):
    response = replay.post("/api")

    assert response.status_code == 405
    assert "GET" in response.json()["error"]


def test_unsupported_method_gets_json_error(replay):
    response = replay.request("DELETE", "/api")

    assert response.status_code == 501
    assert "GET" in response.json()["error"]


def test_replay_logs_omit_api_key(replay, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "REPLAYKEY4U8V2"

    found = txlist(replay, RETAIL, apikey=secret)
    missing = txlist(replay, "0x" + "1" * 40, apikey=secret)

    assert found.status_code == 200
    assert missing.status_code == 404
    assert secret not in missing.text
    # Only the replay's own records count: the test's httpx client logs its URLs.
    messages = [record.getMessage() for record in caplog.records
                if record.name.startswith("evm_score_oracle")]
    assert any("replay GET /api" in message for message in messages)
    assert not [message for message in messages if secret in message]


def test_window_beyond_cap_returns_notok(tmp_path):
    rows = [{"blockNumber": str(block), "hash": f"0x{block:x}"} for block in range(1, 21)]
    write_recording(tmp_path / "window.json", [
        ("https://explorer.invalid/api?module=account&action=txlist&address=0xab",
         {"status": "1", "message": "OK", "result": rows}),
    ])

    with ReplayServer(load_recordings(tmp_path), window_rows=8) as server:
        inside = httpx.get(server.url + "/api", params={
            "module": "account", "action": "txlist", "address": "0xab", "page": "2", "offset": "4",
        }).json()
        beyond = httpx.get(server.url + "/api", params={
            "module": "account", "action": "txlist", "address": "0xab", "page": "3", "offset": "4",
        }).json()

    assert inside["result"] == rows[4:8]
    assert beyond["message"] == "NOTOK"
    assert "less than or equal to 8" in beyond["result"]


def test_load_rejects_invalid_json_naming_file(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")

    with pytest.raises(ConfigError, match="broken.json"):
        load_recordings(tmp_path)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"wallets": []}, "interactions"),
        ({"interactions": [{"body": {}}]}, "url"),
        ({"interactions": [{"url": "https://x.invalid/api"}]}, "body"),
        ({"interactions": [{"url": "https://x.invalid/api", "body": {}, "status": "200"}]},
         "status"),
        ({"interactions": [{"url": "https://x.invalid/api", "body": {"result": [{"hash": "0x"}]}}]},
         "blockNumber"),
    ],
)
def test_load_rejects_bad_recording(tmp_path, document, fragment):
    (tmp_path / "bad.json").write_text(json.dumps(document))

    with pytest.raises(ConfigError, match=fragment) as caught:
        load_recordings(tmp_path)

    assert "bad.json" in str(caught.value)


def test_load_rejects_directory_without_recordings(tmp_path):
    with pytest.raises(ConfigError, match="no \\*.json"):
        load_recordings(tmp_path)


def test_load_rejects_missing_directory(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_recordings(tmp_path / "absent")


def test_module_entry_point_serves_on_chosen_port():
    process = subprocess.Popen(
        [sys.executable, "-m", "evm_score_oracle.replay", str(WALLETS), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"replay-explorer listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"unexpected first line {line!r}"

        answer = httpx.get(match.group(1) + "/api", params={
            "module": "account", "action": "txlist", "address": RETAIL,
        }, timeout=10).json()
        assert len(answer["result"]) == 75
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_module_entry_point_rejects_bad_directory(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-m", "evm_score_oracle.replay", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert finished.returncode == 2
    assert str(tmp_path) in finished.stderr
    assert "Traceback" not in finished.stderr


def write_recording(path: Path, interactions: list[tuple[str, dict]]) -> None:
    document = {
        "description": "synthetic recording for a replay test",
        "source": "generated by the test",
        "wallets": [],
        "interactions": [
            {"method": "GET", "url": url, "status": 200, "body": body}
            for url, body in interactions
        ],
    }
    path.write_text(json.dumps(document))
