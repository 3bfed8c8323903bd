"""Tests for the explorer client against the replay explorer and scripted servers on loopback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from evm_score_oracle.config import load_settings
from evm_score_oracle.errors import (
    UpstreamResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from evm_score_oracle.explorer import ExplorerClient, WalletHistory, row_identity
from evm_score_oracle.replay import ReplayServer, load_recordings
from support.upstreams import Canned, ScriptedUpstream, notok, ok_rows, refused_port

WALLETS = Path(__file__).parent / "data" / "wallets"
RETAIL = "0xc38b0528097b8076048bedf4330644f068cec2e6"
DEFI = "0xb8553d9ee35dd23bb96fbd679e651b929821969b"
MULTICHAIN = "0xc37b40abdb939635068d3c5f13e7faf686f03b65"
API_KEY = "TESTKEY7Q9XW3ZP"
ROW_SOURCES = {"txlist": "transactions", "txlistinternal": "internal_transactions",
               "tokentx": "token_transfers"}


def settings_for(url: str, **overrides: object):
    values = {
        "explorer_url": url,
        "explorer_chain_id": "",
        "explorer_sources": "txlist",
        "explorer_retries": 0,
        "explorer_backoff_s": 0,
        "explorer_timeout_s": 5,
    }
    values.update(overrides)
    return load_settings(**values)


async def fetch(url: str, address: str = RETAIL, *, window_rows: int | None = None,
                **overrides: object) -> WalletHistory:
    settings = settings_for(url, **overrides)
    extra = {} if window_rows is None else {"window_rows": window_rows}
    async with ExplorerClient(settings, **extra) as client:
        return await client.fetch_history(address)


def recorded_queries() -> dict[tuple[str, str, str], dict[str, list]]:
    """Group the recorded list and balance responses by (path, chain id, address)."""
    wallets: dict[tuple[str, str, str], dict[str, list]] = {}
    for path in sorted(WALLETS.glob("*.json")):
        for interaction in json.loads(path.read_text())["interactions"]:
            parts = urlsplit(interaction["url"])
            query = dict(parse_qsl(parts.query))
            action = query.get("action")
            if action not in (*ROW_SOURCES, "balance") or "address" not in query:
                continue
            key = (parts.path, query.get("chainid", ""), query["address"].lower())
            wallets.setdefault(key, {}).setdefault(action, []).append(interaction["body"])
    return wallets


def distinct_rows(bodies: list[dict]) -> set[str]:
    return {row_identity(row) for body in bodies for row in body["result"]}


@pytest.fixture(scope="module")
def replay_url():
    with ReplayServer(load_recordings(WALLETS)) as server:
        yield server.url


def explorer_calls(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records
            if record.name == "evm_score_oracle.explorer" and "explorer call" in record.message]


async def test_every_recorded_wallet_fetches(replay_url):
    checked = 0
    for (path, chain_id, address), answers in recorded_queries().items():
        if any(body.get("message") == "NOTOK" for bodies in answers.values() for body in bodies):
            continue
        sources = ",".join(answers)

        history = await fetch(replay_url + path, address, explorer_chain_id=chain_id,
                              explorer_sources=sources)

        assert history.address == address
        assert history.chain_id == chain_id
        assert history.sources == tuple(answers)
        assert history.truncated == ()
        for source, field_name in ROW_SOURCES.items():
            rows = getattr(history, field_name)
            expected = distinct_rows(answers.get(source, []))
            assert {row_identity(row) for row in rows} == expected, (address, source)
            assert len(rows) == len(expected), (address, source)
            blocks = [int(row["blockNumber"]) for row in rows]
            assert blocks == sorted(blocks), (address, source)
        if "balance" in answers:
            assert history.balance_wei == int(answers["balance"][0]["result"])
        else:
            assert history.balance_wei is None
        checked += 1

    assert checked >= 10


async def test_retail_wallet_has_recorded_counts(replay_url):
    history = await fetch(replay_url + "/api", RETAIL)

    assert len(history.transactions) == 75
    assert sum(row["isError"] == "1" for row in history.transactions) == 2
    assert history.internal_transactions == ()
    assert history.token_transfers == ()


async def test_paging_requests_until_short_page(replay_url, caplog):
    caplog.set_level(logging.INFO)
    single = await fetch(replay_url + "/api")
    caplog.clear()

    paged = await fetch(replay_url + "/api", explorer_page_size=10)

    assert paged.transactions == single.transactions
    pages = [record.args[1] for record in explorer_calls(caplog)]
    assert pages == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_paging_stops_after_empty_page(replay_url, caplog):
    caplog.set_level(logging.INFO)

    history = await fetch(replay_url + "/api", explorer_page_size=15)

    assert len(history.transactions) == 75
    assert len(explorer_calls(caplog)) == 6


async def test_window_rollover_fetches_every_row_once(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    rows = synthetic_rows(blocks=range(100, 110), per_block=3)
    write_recording(tmp_path, rows)

    with ReplayServer(load_recordings(tmp_path), window_rows=8) as server:
        history = await fetch(server.url + "/api", "0xab", window_rows=8,
                              explorer_page_size=4)

    assert list(history.transactions) == rows
    assert history.truncated == ()
    # Windows start at blocks 0, 102, 104, 106 and 108, two pages each.
    assert len(explorer_calls(caplog)) == 10


async def test_window_rollover_drops_refetched_boundary_rows(tmp_path):
    # Rows of the boundary block come back with one more confirmation, as they
    # do when a block is mined between two calls.
    rows = synthetic_rows(blocks=range(1, 7), per_block=3)
    boundary = [row for row in rows if row["blockNumber"] == "3"]
    later = [dict(row, confirmations=str(int(row["confirmations"]) + 1)) for row in boundary]
    upstream_pages = [
        ok_rows(rows[0:4]), ok_rows(rows[4:8]),
        ok_rows(later + rows[9:10]), ok_rows(rows[10:14]),
        ok_rows(rows[14:18]),
    ]

    with ScriptedUpstream(upstream_pages + [ok_rows([])]) as upstream:
        history = await fetch(upstream.url, "0xab", window_rows=8, explorer_page_size=4)

    assert [row["hash"] for row in history.transactions] == [row["hash"] for row in rows]
    assert [query["startblock"] for query in upstream.queries] == ["0", "0", "3", "3", "5", "5"]
    assert [query["page"] for query in upstream.queries] == ["1", "2", "1", "2", "1", "2"]


async def test_block_larger_than_window_marks_truncated(tmp_path, caplog):
    rows = synthetic_rows(blocks=[5], per_block=12)
    write_recording(tmp_path, rows)

    with ReplayServer(load_recordings(tmp_path), window_rows=8) as server:
        history = await fetch(server.url + "/api", "0xab", window_rows=8,
                              explorer_page_size=4)

    assert list(history.transactions) == rows[:8]
    assert history.truncated == ("txlist",)
    assert any("more rows than one query window" in record.message
               for record in caplog.records if record.levelno == logging.WARNING)


async def test_max_rows_cap_sets_truncated(replay_url):
    history = await fetch(replay_url + "/api", explorer_page_size=10, explorer_max_rows=25)

    assert len(history.transactions) == 25
    assert history.truncated == ("txlist",)


async def test_max_rows_equal_to_total_is_not_truncated(replay_url):
    history = await fetch(replay_url + "/api", explorer_page_size=10, explorer_max_rows=75)

    assert len(history.transactions) == 75
    assert history.truncated == ()


async def test_query_shape_with_chain_and_key():
    # One upstream per source: the client fetches sources concurrently, so a
    # shared script could hand the balance answer to the list query.
    settings = {"explorer_chain_id": "1", "explorer_api_key": API_KEY, "explorer_page_size": 500}
    with ScriptedUpstream([ok_rows([])]) as list_upstream:
        listed = await fetch(list_upstream.url, RETAIL, explorer_sources="txlist", **settings)
    with ScriptedUpstream([Canned({"status": "1", "message": "OK", "result": "42"})]) as balance_upstream:
        balanced = await fetch(balance_upstream.url, RETAIL, explorer_sources="balance", **settings)

    assert balanced.balance_wei == 42
    assert listed.transactions == ()
    assert list_upstream.queries == [{
        "chainid": "1", "module": "account", "action": "txlist", "address": RETAIL,
        "startblock": "0", "endblock": "99999999", "page": "1", "offset": "500",
        "sort": "asc", "apikey": API_KEY,
    }]
    assert balance_upstream.queries == [{
        "chainid": "1", "module": "account", "action": "balance", "address": RETAIL,
        "tag": "latest", "apikey": API_KEY,
    }]


async def test_query_omits_empty_chain_and_missing_key():
    with ScriptedUpstream([ok_rows([])]) as upstream:
        await fetch(upstream.url)

    assert "chainid" not in upstream.queries[0]
    assert "apikey" not in upstream.queries[0]


async def test_notok_fails_naming_explorer_message(replay_url):
    with pytest.raises(UpstreamResponseError) as caught:
        await fetch(replay_url + "/v2/api", MULTICHAIN, explorer_chain_id="56")

    assert "Free API access is not supported for this chain" in str(caught.value)
    assert "txlist" in str(caught.value)
    assert caught.value.upstream == "explorer"
    assert caught.value.reason == "bad_response"


async def test_notok_is_not_retried():
    with ScriptedUpstream([notok("Invalid API Key"), ok_rows([])]) as upstream:
        with pytest.raises(UpstreamResponseError, match="Invalid API Key"):
            await fetch(upstream.url, explorer_retries=3)

    assert len(upstream.queries) == 1


async def test_rate_limit_retried_then_succeeds(caplog):
    row = synthetic_rows(blocks=[7], per_block=1)
    script = [notok("Max rate limit reached"), notok("Max calls per sec rate limit reached (5/sec)"),
              ok_rows(row)]

    with ScriptedUpstream(script) as upstream:
        history = await fetch(upstream.url, explorer_retries=2)

    assert list(history.transactions) == row
    assert len(upstream.queries) == 3
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2


async def test_rate_limit_exhausts_retries():
    with ScriptedUpstream([notok("Max rate limit reached")]) as upstream:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await fetch(upstream.url, explorer_retries=2)

    assert len(upstream.queries) == 3
    assert caught.value.reason == "rate_limited"
    assert caught.value.upstream == "explorer"
    assert "Max rate limit reached" in str(caught.value)


@pytest.mark.parametrize(("status", "reason"), [(429, "rate_limited"), (503, "unavailable")])
async def test_retried_http_status_exhausts(status, reason):
    with ScriptedUpstream([Canned({"error": "busy"}, status=status)]) as upstream:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await fetch(upstream.url, explorer_retries=1)

    assert len(upstream.queries) == 2
    assert caught.value.reason == reason
    assert str(status) in str(caught.value)


async def test_server_error_retried_then_succeeds():
    with ScriptedUpstream([Canned({}, status=502), ok_rows([])]) as upstream:
        history = await fetch(upstream.url, explorer_retries=1)

    assert history.transactions == ()
    assert len(upstream.queries) == 2


async def test_client_error_status_fails_at_once():
    with ScriptedUpstream([Canned({"error": "no"}, status=404)]) as upstream:
        with pytest.raises(UpstreamResponseError, match="HTTP 404"):
            await fetch(upstream.url, explorer_retries=3)

    assert len(upstream.queries) == 1


async def test_slow_upstream_times_out():
    with ScriptedUpstream([Canned(ok_rows([]).body, delay_s=30)]) as upstream:
        with pytest.raises(UpstreamTimeoutError) as caught:
            await fetch(upstream.url, explorer_timeout_s=0.2)

    assert caught.value.upstream == "explorer"
    assert caught.value.reason == "timeout"
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


async def test_refused_port_is_unavailable():
    url = f"http://127.0.0.1:{refused_port()}/api"

    with pytest.raises(UpstreamUnavailableError) as caught:
        await fetch(url)

    assert caught.value.reason == "unavailable"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert url in str(caught.value)


@pytest.mark.parametrize(
    ("canned", "fragment"),
    [
        (Canned(raw=b'{"status": "1", "message": "OK", "result": [}'), "not valid JSON"),
        (Canned(raw=b"<html>Bad gateway</html>"), "not valid JSON"),
        (Canned(["not", "an", "object"]), "expected an object"),
        (Canned({"status": "1", "result": []}), "expected an object"),
        (Canned({"status": "1", "message": "OK", "result": {"hash": "0x1"}}), "list of rows"),
        (Canned({"status": "1", "message": "OK", "result": 7}), "list of rows"),
        (Canned({"status": "1", "message": "OK", "result": ["0x1"]}), "list of rows"),
        (Canned({"status": "1", "message": "OK", "result": [{"hash": "0x1"}]}), "blockNumber"),
    ],
)
async def test_malformed_answer_is_response_error(canned, fragment):
    with ScriptedUpstream([canned]) as upstream:
        with pytest.raises(UpstreamResponseError, match=fragment) as caught:
            await fetch(upstream.url, explorer_page_size=1)

    assert caught.value.upstream == "explorer"


@pytest.mark.parametrize("balance", ["-5", "12.5", "0x10", "", 42, None])
async def test_invalid_balance_is_response_error(balance):
    with ScriptedUpstream([Canned({"status": "1", "message": "OK", "result": balance})]) as upstream:
        with pytest.raises(UpstreamResponseError, match="balance"):
            await fetch(upstream.url, explorer_sources="balance")


async def test_one_failing_source_fails_fetch(replay_url):
    # The replay has this wallet's lists but no balance, so balance gets 404.
    with pytest.raises(UpstreamResponseError, match="balance"):
        await fetch(replay_url + "/v2/api", DEFI, explorer_chain_id="1",
                    explorer_sources="txlist,tokentx,balance")


@pytest.mark.parametrize(
    "canned",
    [
        notok(f"Invalid API Key {API_KEY}"),
        notok(f"Max rate limit reached for apikey={API_KEY}"),
        Canned({"status": "1", "message": "OK", "result": {"apikey": API_KEY}}),
        Canned({"error": API_KEY}, status=503),
        Canned(ok_rows([]).body, delay_s=30),
    ],
)
async def test_api_key_never_in_errors_or_logs(canned, caplog):
    caplog.set_level(logging.DEBUG)

    with ScriptedUpstream([canned]) as upstream:
        with pytest.raises((UpstreamResponseError, UpstreamUnavailableError,
                            UpstreamTimeoutError)) as caught:
            await fetch(upstream.url, explorer_api_key=API_KEY, explorer_retries=1,
                        explorer_timeout_s=0.3)

    assert upstream.queries[0]["apikey"] == API_KEY
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value.args)
    logged = [record.getMessage() for record in caplog.records]
    assert any("explorer" in message for message in logged)
    assert not [message for message in logged if API_KEY in message]


async def test_api_key_not_in_refused_error(caplog):
    caplog.set_level(logging.DEBUG)

    with pytest.raises(UpstreamUnavailableError) as caught:
        await fetch(f"http://127.0.0.1:{refused_port()}/api", explorer_api_key=API_KEY)

    assert API_KEY not in str(caught.value)
    assert not [record for record in caplog.records if API_KEY in record.getMessage()]


async def test_successful_fetch_logs_no_key(replay_url, caplog):
    caplog.set_level(logging.DEBUG)
    # Entry points turn the httpx logger down; this test needs its request lines.
    caplog.set_level(logging.DEBUG, logger="httpx")

    await fetch(replay_url + "/api", explorer_api_key=API_KEY)

    messages = [record.getMessage() for record in caplog.records]
    assert any("HTTP Request" in message for message in messages)
    assert not [message for message in messages if API_KEY in message]


async def test_injected_http_client_stays_open(replay_url):
    async with httpx.AsyncClient() as http_client:
        client = ExplorerClient(settings_for(replay_url + "/api"), http_client=http_client)
        history = await client.fetch_history(RETAIL)
        await client.aclose()

        assert len(history.transactions) == 75
        assert not http_client.is_closed


def test_window_rows_must_be_positive():
    with pytest.raises(ValueError, match="window_rows"):
        ExplorerClient(settings_for("http://127.0.0.1:9/api"), window_rows=0)


def synthetic_rows(blocks, per_block: int) -> list[dict]:
    return [
        {"blockNumber": str(block), "hash": f"0x{block:04x}{index:02x}",
         "confirmations": "1000", "value": str(index)}
        for block in blocks
        for index in range(per_block)
    ]


def write_recording(directory: Path, rows: list[dict]) -> None:
    document = {
        "description": "synthetic txlist for address 0xab",
        "source": "generated by the test",
        "wallets": [{"address": "0xab", "profile": "synthetic"}],
        "interactions": [{
            "method": "GET",
            "url": "https://explorer.invalid/api?module=account&action=txlist&address=0xab",
            "status": 200,
            "body": {"status": "1", "message": "OK", "result": rows},
        }],
    }
    (directory / "synthetic.json").write_text(json.dumps(document))
