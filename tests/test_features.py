"""Feature extraction on recorded real wallets and on hand-made edge-case rows."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.recordings import (
    BALANCE_ONLY,
    DEFI_BRIDGE,
    DORMANT_3TX,
    NO_TRANSACTIONS,
    RETAIL_DEFI,
    TOKEN_ONLY,
    recorded_history,
    recorded_rows,
)

from evm_score_oracle.explorer import WalletHistory
from evm_score_oracle.features import Features, extract_features, format_eth, parse_uint

AS_OF_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
AS_OF_S = AS_OF_MS // 1000
DAY = 86_400
WALLET = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20
THIRD = "0x" + "ef" * 20
ALL_ROW_SOURCES = ("txlist", "txlistinternal", "tokentx")


def make_tx(**fields: str) -> dict[str, str]:
    """Return a plain successful ETH transfer from OTHER to WALLET, with overrides."""
    row = {
        "blockNumber": "18000000",
        "timeStamp": str(AS_OF_S - 10 * DAY),
        "hash": "0x" + "11" * 32,
        "from": OTHER,
        "to": WALLET,
        "value": "1000000000000000000",
        "gas": "21000",
        "gasPrice": "1000000000",
        "gasUsed": "21000",
        "isError": "0",
        "txreceipt_status": "1",
        "input": "0x",
        "contractAddress": "",
        "methodId": "0x",
        "functionName": "",
    }
    row.update(fields)
    return row


def history_of(*transactions: dict, chain_id: str = "1", **other: object) -> WalletHistory:
    return WalletHistory(
        address=WALLET, chain_id=chain_id, sources=("txlist",), transactions=transactions, **other
    )


# Recorded wallets


def test_retail_wallet_counts() -> None:
    features = extract_features(recorded_history(RETAIL_DEFI), AS_OF_MS)

    assert features.tx_count == 75
    assert features.outgoing_count == 70
    assert features.incoming_count == 5
    assert features.failed_count == 2
    assert features.failed_permille == 28
    assert features.successful_tx_count == 73
    assert features.self_transfer_count == 0


def test_retail_wallet_time_features() -> None:
    rows = recorded_rows(RETAIL_DEFI, "txlist")
    features = extract_features(recorded_history(RETAIL_DEFI), AS_OF_MS)

    assert features.first_activity_ts == min(int(row["timeStamp"]) for row in rows)
    assert features.last_activity_ts == max(int(row["timeStamp"]) for row in rows)
    assert features.account_age_days == (AS_OF_S - features.first_activity_ts) // DAY
    assert features.active_months == 11
    assert features.activity_count == 75
    assert features.activity_last_90d == 0


def test_retail_wallet_protocols() -> None:
    features = extract_features(recorded_history(RETAIL_DEFI), AS_OF_MS)

    assert features.known_protocols == ("ENS", "MetaMask Swaps", "OpenSea", "Polygon Bridge", "Uniswap")
    assert features.contracts_called == 26
    assert features.distinct_selectors == 21


def test_retail_wallet_amounts_are_exact() -> None:
    rows = recorded_rows(RETAIL_DEFI, "txlist")
    succeeded = [row for row in rows if row["isError"] == "0"]
    sent = [row for row in rows if row["from"] == RETAIL_DEFI]
    features = extract_features(recorded_history(RETAIL_DEFI), AS_OF_MS)

    assert features.total_value_out_wei == sum(int(row["value"]) for row in succeeded if row["from"] == RETAIL_DEFI)
    assert features.total_value_in_wei == sum(int(row["value"]) for row in succeeded if row["to"] == RETAIL_DEFI)
    assert features.gas_spent_wei == sum(int(row["gasUsed"]) * int(row["gasPrice"]) for row in sent)
    assert features.max_tx_value_wei == max(int(row["value"]) for row in succeeded)
    assert features.as_dict()["total_value_in_eth"] == "20.30597738"


def test_bridge_wallet_all_row_kinds() -> None:
    features = extract_features(recorded_history(DEFI_BRIDGE, ALL_ROW_SOURCES), AS_OF_MS)

    assert features.tx_count == 19
    assert features.internal_tx_count == 5
    assert features.token_transfer_count == 5
    assert features.distinct_tokens == 1
    assert features.distinct_tokens_sent == 1
    assert features.known_protocols == ("MetaMask Swaps", "Optimism Bridge", "Stargate")
    # Internal and token rows share hashes with normal transactions.
    assert features.activity_count == 22


def test_pre_byzantium_rows_not_failed() -> None:
    rows = recorded_rows(DORMANT_3TX, "txlist")
    features = extract_features(recorded_history(DORMANT_3TX), AS_OF_MS)

    assert all(row["txreceipt_status"] == "" for row in rows)
    assert features.failed_count == 0
    assert features.successful_tx_count == 3


def test_token_only_wallet_has_age() -> None:
    features = extract_features(recorded_history(TOKEN_ONLY, ALL_ROW_SOURCES), AS_OF_MS)

    assert features.tx_count == 0
    assert features.token_transfer_count == 1
    assert features.first_activity_ts is not None
    assert features.account_age_days > 0
    assert features.outgoing_counterparties == 0


def test_balance_only_wallet() -> None:
    features = extract_features(recorded_history(BALANCE_ONLY, ALL_ROW_SOURCES + ("balance",)), AS_OF_MS)

    assert features.activity_count == 0
    assert features.balance_wei == 960071318000000000
    assert features.as_dict()["balance_eth"] == "0.960071318"


def test_empty_wallet_defaults() -> None:
    features = extract_features(recorded_history(NO_TRANSACTIONS), AS_OF_MS)

    assert features == Features()
    assert features.as_dict()["balance_eth"] is None
    assert features.as_dict()["first_activity_ts"] is None


# as_of


def test_rows_after_as_of_ignored() -> None:
    rows = recorded_rows(RETAIL_DEFI, "txlist")
    cutoff = int(rows[9]["timeStamp"])
    expected = sum(1 for row in rows if int(row["timeStamp"]) <= cutoff)

    features = extract_features(recorded_history(RETAIL_DEFI), cutoff * 1000 + 999)

    assert features.tx_count == expected
    assert features.last_activity_ts == cutoff
    assert features.account_age_days == (cutoff - features.first_activity_ts) // DAY


def test_as_of_before_history_is_empty() -> None:
    history = recorded_history(RETAIL_DEFI)
    features = extract_features(history, 1_000_000_000_000)

    assert features == Features()


def test_future_rows_do_not_change_features() -> None:
    past = make_tx()
    future = make_tx(hash="0x" + "22" * 32, timeStamp=str(AS_OF_S + 1), value="9" * 30)

    assert extract_features(history_of(past, future), AS_OF_MS) == extract_features(history_of(past), AS_OF_MS)


def test_recent_windows() -> None:
    ages_days = [0, 3, 20, 60, 200]
    rows = [
        make_tx(hash=f"0x{index:064x}", timeStamp=str(AS_OF_S - age * DAY))
        for index, age in enumerate(ages_days)
    ]
    features = extract_features(history_of(*rows), AS_OF_MS)

    assert features.activity_last_1d == 1
    assert features.activity_last_7d == 2
    assert features.activity_last_30d == 3
    assert features.activity_last_90d == 4
    assert features.activity_count == 5


# Edge-case rows


def test_genesis_row() -> None:
    genesis = make_tx(
        hash="GENESIS_" + WALLET[2:], **{"from": "GENESIS"}, blockNumber="0", timeStamp="1438269973",
        gas="0", gasPrice="0", gasUsed="0", txreceipt_status="", isError="0",
    )
    features = extract_features(history_of(genesis), AS_OF_MS)

    assert features.incoming_count == 1
    assert features.unique_counterparties == 0
    assert features.total_value_in_wei == 10**18
    assert features.first_activity_ts == 1438269973


def test_contract_creation_row() -> None:
    created = THIRD
    creation = make_tx(**{"from": WALLET, "to": ""}, contractAddress=created, input="0x6080604052")
    features = extract_features(history_of(creation), AS_OF_MS)

    assert features.outgoing_count == 1
    assert features.contract_creation_count == 1
    assert features.contracts_called == 0
    assert features.outgoing_counterparties == 1


def test_missing_fields_do_not_crash() -> None:
    bare = {"timeStamp": str(AS_OF_S - DAY), "from": WALLET}
    features = extract_features(history_of(bare), AS_OF_MS)

    assert features.tx_count == 1
    assert features.outgoing_count == 1
    assert features.failed_count == 0
    assert features.gas_spent_wei == 0


def test_non_numeric_value_counts_zero() -> None:
    row = make_tx(value="abc", gasUsed="", gasPrice=None)
    features = extract_features(history_of(row), AS_OF_MS)

    assert features.tx_count == 1
    assert features.total_value_in_wei == 0
    assert features.max_tx_value_wei == 0


@pytest.mark.parametrize("timestamp", ["", "soon", "-5", "0x5f5e100", None, 1.5])
def test_bad_timestamp_row_skipped(timestamp: object) -> None:
    row = make_tx(timeStamp=timestamp)
    features = extract_features(history_of(row, make_tx(hash="0x" + "33" * 32)), AS_OF_MS)

    assert features.tx_count == 1
    assert features.skipped_rows == 1


def test_non_mapping_row_skipped() -> None:
    features = extract_features(history_of("not a row", None, make_tx()), AS_OF_MS)  # type: ignore[arg-type]

    assert features.tx_count == 1
    assert features.skipped_rows == 2


def test_is_error_missing_uses_receipt_status() -> None:
    row = make_tx(**{"from": WALLET, "to": OTHER}, txreceipt_status="0")
    del row["isError"]
    features = extract_features(history_of(row), AS_OF_MS)

    assert features.failed_count == 1
    assert features.failed_permille == 1000
    assert features.total_value_out_wei == 0


def test_self_transfer_counted_once_outgoing() -> None:
    row = make_tx(**{"from": WALLET, "to": WALLET})
    features = extract_features(history_of(row), AS_OF_MS)

    assert features.outgoing_count == 1
    assert features.incoming_count == 0
    assert features.self_transfer_count == 1
    assert features.total_value_out_wei == 0
    assert features.total_value_in_wei == 0
    assert features.unique_counterparties == 0


def test_duplicate_rows_counted_once() -> None:
    row = make_tx()
    features = extract_features(history_of(row, dict(row)), AS_OF_MS)

    assert features.tx_count == 1
    assert features.total_value_in_wei == 10**18


def test_transfers_sharing_hash_counted_apart() -> None:
    # Two calls in one transaction: same hash, different trace ids.
    first = make_tx(traceId="0", value="1")
    second = make_tx(traceId="1", value="2")
    history = WalletHistory(
        address=WALLET, chain_id="1", sources=ALL_ROW_SOURCES,
        internal_transactions=(first, second, dict(second), first),
    )
    features = extract_features(history, AS_OF_MS)

    assert features.internal_tx_count == 2
    assert features.total_value_in_wei == 3
    assert features.activity_count == 1


def test_duplicate_after_bad_timestamp_dropped() -> None:
    # The first copy decides. It is skipped, and the later good copy still counts as its duplicate.
    bad = make_tx(timeStamp="soon")
    features = extract_features(history_of(bad, make_tx()), AS_OF_MS)

    assert features.skipped_rows == 1
    assert features.tx_count == 0


def test_counterparties_across_row_kinds() -> None:
    history = WalletHistory(
        address=WALLET, chain_id="1", sources=ALL_ROW_SOURCES,
        transactions=(make_tx(**{"from": "GENESIS"}),),
        internal_transactions=(make_tx(**{"from": WALLET, "to": OTHER.upper().replace("0X", "0x")}),),
        token_transfers=(
            make_tx(**{"from": THIRD}, contractAddress=OTHER),
            make_tx(hash="0x" + "55" * 32, **{"from": WALLET, "to": WALLET}, contractAddress=THIRD),
        ),
    )
    features = extract_features(history, AS_OF_MS)

    assert features.unique_counterparties == 2
    assert features.outgoing_counterparties == 1
    assert features.distinct_tokens == 2
    assert features.distinct_tokens_sent == 1


def test_selector_read_from_input() -> None:
    # Blockscout style: no functionName and methodId "0x" on a real call.
    call = make_tx(**{"from": WALLET, "to": OTHER}, input="0xa9059cbb" + "00" * 64, methodId="0x", functionName="")
    features = extract_features(history_of(call), AS_OF_MS)

    assert features.contracts_called == 1
    assert features.distinct_selectors == 1


def test_upper_case_addresses_match() -> None:
    row = make_tx(**{"from": OTHER.upper().replace("0X", "0x"), "to": WALLET.upper().replace("0X", "0x")})
    features = extract_features(history_of(row), AS_OF_MS)

    assert features.incoming_count == 1
    assert features.unique_counterparties == 1


def test_failed_calls_name_no_protocol() -> None:
    uniswap = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
    failed = make_tx(**{"from": WALLET, "to": uniswap}, input="0x7ff36ab5", isError="1", txreceipt_status="0")
    features = extract_features(history_of(failed), AS_OF_MS)

    assert features.known_protocols == ()
    assert features.contracts_called == 1


def test_protocols_only_on_mainnet() -> None:
    uniswap = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
    call = make_tx(**{"from": WALLET, "to": uniswap}, input="0x7ff36ab5")

    assert extract_features(history_of(call), AS_OF_MS).known_protocols == ("Uniswap",)
    assert extract_features(history_of(call, chain_id=""), AS_OF_MS).known_protocols == ("Uniswap",)
    assert extract_features(history_of(call, chain_id="137"), AS_OF_MS).known_protocols == ()


def test_volume_cap_per_transaction() -> None:
    large = make_tx(value=str(50 * 10**18))
    small = make_tx(hash="0x" + "44" * 32, value=str(10**17))
    features = extract_features(history_of(large, small), AS_OF_MS)

    assert features.capped_volume_wei == 10**18 + 10**17
    assert features.total_value_in_wei == 50 * 10**18 + 10**17


def test_truncated_sources_reported() -> None:
    features = extract_features(history_of(make_tx(), truncated=("txlist",)), AS_OF_MS)

    assert features.as_dict()["truncated_sources"] == ["txlist"]


# as_dict and helpers


def test_as_dict_is_json_safe() -> None:
    history = recorded_history(DEFI_BRIDGE, ALL_ROW_SOURCES)
    data = extract_features(history, AS_OF_MS).as_dict()

    assert json.loads(json.dumps(data)) == data
    for name, value in data.items():
        assert value is None or isinstance(value, (int, str, bool, list)), name
        assert not isinstance(value, float), name


@pytest.mark.parametrize(
    ("wei", "text"),
    [(0, "0"), (1, "0.000000000000000001"), (10**18, "1"), (15 * 10**17, "1.5"), (-(10**17), "-0.1")],
)
def test_format_eth(wei: int, text: str) -> None:
    assert format_eth(wei) == text


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("0", 0), ("123", 123), (7, 7), ("", None), ("0x1f", None), ("-1", None), ("1.5", None),
     (" 1", None), (True, None), (-3, None), (None, None), ("١٢", None)],
)
def test_parse_uint(value: object, parsed: int | None) -> None:
    assert parse_uint(value) == parsed


# Properties

_text = st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 10**20).map(str), st.sampled_from([WALLET, OTHER, ""]))
_row = st.dictionaries(
    st.sampled_from(["timeStamp", "hash", "from", "to", "value", "isError", "txreceipt_status",
                     "input", "contractAddress", "gasUsed", "gasPrice", "logIndex"]),
    _text,
)


@settings(max_examples=200, deadline=None)
@given(transactions=st.lists(_row, max_size=8), internal=st.lists(_row, max_size=4), tokens=st.lists(_row, max_size=4))
def test_arbitrary_rows_never_crash(transactions: list, internal: list, tokens: list) -> None:
    history = WalletHistory(
        address=WALLET, chain_id="1", sources=ALL_ROW_SOURCES,
        transactions=tuple(transactions), internal_transactions=tuple(internal), token_transfers=tuple(tokens),
    )
    features = extract_features(history, AS_OF_MS)

    assert features.tx_count + features.skipped_rows <= len(transactions) + len(internal) + len(tokens)
    assert features.outgoing_count + features.incoming_count <= features.tx_count
    assert 0 <= features.failed_permille <= 1000
    assert json.loads(json.dumps(features.as_dict())) == features.as_dict()


@settings(max_examples=100, deadline=None)
@given(order=st.permutations(range(20)))
def test_row_order_does_not_matter(order: list[int]) -> None:
    rows = recorded_rows(RETAIL_DEFI, "txlist")[:20]
    shuffled = WalletHistory(address=RETAIL_DEFI, chain_id="1", sources=("txlist",), transactions=tuple(rows[i] for i in order))
    in_order = WalletHistory(address=RETAIL_DEFI, chain_id="1", sources=("txlist",), transactions=rows)

    assert extract_features(shuffled, AS_OF_MS) == extract_features(in_order, AS_OF_MS)
