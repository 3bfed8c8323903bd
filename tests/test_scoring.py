"""Rubric-v1: known answers for recorded wallets and properties of the curves."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.recordings import (
    BALANCE_ONLY,
    DEFI_BRIDGE,
    DORMANT_3TX,
    DORMANT_11TX,
    EMPTY_ZERO_BALANCE,
    NO_TRANSACTIONS,
    RETAIL_DEFI,
    TOKEN_ONLY,
    recorded_history,
)

from evm_score_oracle.explorer import WalletHistory
from evm_score_oracle.features import WEI_PER_ETH, Features, extract_features
from evm_score_oracle.scoring import DIMENSION_MAX, RUBRIC_VERSION, RubricScore, saturate, score_rubric

AS_OF_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
AS_OF_S = AS_OF_MS // 1000
DAY = 86_400
ALL = ("txlist", "txlistinternal", "tokentx")
WALLET = "0x" + "ab" * 20

# Computed once with rubric-v1 and checked by hand against docs/scoring.md.
# A change here means the rubric changed: bump RUBRIC_VERSION.
KNOWN_ANSWERS = [
    (RETAIL_DEFI, ("txlist",), 619, {"activity": 108, "maturity": 135, "diversity": 113, "risk": 190, "value": 73}),
    (NO_TRANSACTIONS, ("txlist",), 100, {"activity": 0, "maturity": 0, "diversity": 0, "risk": 100, "value": 0}),
    (DEFI_BRIDGE, ALL, 431, {"activity": 60, "maturity": 97, "diversity": 73, "risk": 190, "value": 11}),
    (DORMANT_11TX, ALL, 446, {"activity": 28, "maturity": 146, "diversity": 17, "risk": 188, "value": 67}),
    (DORMANT_3TX, ALL, 331, {"activity": 12, "maturity": 134, "diversity": 7, "risk": 175, "value": 3}),
    (BALANCE_ONLY, ALL + ("balance",), 148, {"activity": 0, "maturity": 0, "diversity": 0, "risk": 100, "value": 48}),
    (TOKEN_ONLY, ALL, 243, {"activity": 0, "maturity": 86, "diversity": 0, "risk": 157, "value": 0}),
    (EMPTY_ZERO_BALANCE, ALL + ("balance",), 100, {"activity": 0, "maturity": 0, "diversity": 0, "risk": 100, "value": 0}),
]


def recorded_score(address: str, sources: tuple[str, ...]) -> RubricScore:
    return score_rubric(extract_features(recorded_history(address, sources), AS_OF_MS))


# Known answers


@pytest.mark.parametrize(("address", "sources", "total", "dimensions"), KNOWN_ANSWERS)
def test_recorded_wallet_score(address: str, sources: tuple[str, ...], total: int, dimensions: dict) -> None:
    score = recorded_score(address, sources)

    assert score.dimensions == dimensions
    assert score.total == total
    assert score.version == RUBRIC_VERSION


def test_empty_wallet_scores_lowest() -> None:
    empty = recorded_score(NO_TRANSACTIONS, ("txlist",)).total
    others = [recorded_score(address, sources).total for address, sources, _, _ in KNOWN_ANSWERS]

    assert empty == min(others)


def test_defi_user_beats_dormant_wallet() -> None:
    assert recorded_score(RETAIL_DEFI, ("txlist",)).total > recorded_score(DORMANT_3TX, ALL).total


def test_balance_adds_value() -> None:
    assert recorded_score(BALANCE_ONLY, ALL + ("balance",)).total > recorded_score(EMPTY_ZERO_BALANCE, ALL + ("balance",)).total


def test_as_dict_shape() -> None:
    score = recorded_score(RETAIL_DEFI, ("txlist",))

    assert score.as_dict() == {"total": 619, "dimensions": score.dimensions, "version": "rubric-v1"}


def test_saturate_values() -> None:
    assert saturate(0, 200, 10) == 0
    assert saturate(10, 200, 10) == 100
    assert saturate(30, 200, 10) == 150
    assert saturate(-4, 200, 10) == 0
    assert saturate(10**30, 200, 10) == 199


# Properties on features

_counts = st.integers(min_value=0, max_value=100_000)
_wei = st.integers(min_value=0, max_value=10**26)


@st.composite
def features_strategy(draw: st.DrawFn) -> Features:
    outgoing = draw(_counts)
    failed = draw(st.integers(min_value=0, max_value=outgoing))
    protocols = draw(st.lists(st.sampled_from(["Aave", "Curve", "Lido", "Uniswap", "1inch", "ENS"]), unique=True))
    return Features(
        tx_count=outgoing + draw(_counts),
        outgoing_count=outgoing,
        failed_count=failed,
        successful_tx_count=draw(_counts),
        account_age_days=draw(st.integers(min_value=0, max_value=10_000)),
        active_months=draw(st.integers(min_value=0, max_value=400)),
        activity_last_90d=draw(_counts),
        outgoing_counterparties=draw(_counts),
        contracts_called=draw(_counts),
        known_protocols=tuple(sorted(protocols)),
        distinct_tokens_sent=draw(_counts),
        balance_wei=draw(st.one_of(st.none(), _wei)),
        capped_volume_wei=draw(_wei),
    )


@settings(max_examples=300)
@given(features=features_strategy())
def test_score_within_bounds(features: Features) -> None:
    score = score_rubric(features)

    assert 0 <= score.total <= 1000
    assert set(score.dimensions) == set(DIMENSION_MAX)
    assert sum(score.dimensions.values()) == score.total
    for name, points in score.dimensions.items():
        assert 0 <= points <= DIMENSION_MAX[name], name


@settings(max_examples=100)
@given(features=features_strategy())
def test_score_is_deterministic(features: Features) -> None:
    copy = dataclasses.replace(features)

    assert score_rubric(features) == score_rubric(copy)


@settings(max_examples=300)
@given(features=features_strategy(), extra=st.integers(min_value=1, max_value=1000))
def test_more_failures_never_raise_risk(features: Features, extra: int) -> None:
    worse = dataclasses.replace(
        features,
        failed_count=features.failed_count + extra,
        outgoing_count=features.outgoing_count + extra,
    )
    worse_same_sent = dataclasses.replace(features, failed_count=features.outgoing_count)

    assert score_rubric(worse).dimensions["risk"] <= score_rubric(features).dimensions["risk"]
    assert score_rubric(worse_same_sent).dimensions["risk"] <= score_rubric(features).dimensions["risk"]


# Each case: the field to grow and the dimension that must not fall.
MONOTONE_CASES = [
    ("account_age_days", "maturity"),
    ("account_age_days", "risk"),
    ("active_months", "maturity"),
    ("outgoing_counterparties", "diversity"),
    ("contracts_called", "diversity"),
    ("distinct_tokens_sent", "diversity"),
    ("activity_last_90d", "activity"),
    ("successful_tx_count", "risk"),
    ("capped_volume_wei", "value"),
]


@pytest.mark.parametrize(("field", "dimension"), MONOTONE_CASES)
@settings(max_examples=100)
@given(features=features_strategy(), step=st.integers(min_value=1, max_value=10**6))
def test_growing_input_never_lowers(features: Features, step: int, field: str, dimension: str) -> None:
    grown = dataclasses.replace(features, **{field: getattr(features, field) + step})

    assert score_rubric(grown).dimensions[dimension] >= score_rubric(features).dimensions[dimension]
    assert score_rubric(grown).total >= score_rubric(features).total


@settings(max_examples=100)
@given(features=features_strategy(), step=st.integers(min_value=1, max_value=10**6))
def test_more_sent_transactions_raise_activity(features: Features, step: int) -> None:
    # Failures held fixed: more sent transactions means a lower failed share too.
    grown = dataclasses.replace(features, outgoing_count=features.outgoing_count + step)

    assert score_rubric(grown).dimensions["activity"] >= score_rubric(features).dimensions["activity"]
    assert score_rubric(grown).dimensions["risk"] >= score_rubric(features).dimensions["risk"]


@settings(max_examples=100)
@given(features=features_strategy(), balance=_wei, step=_wei)
def test_more_balance_never_lowers_value(features: Features, balance: int, step: int) -> None:
    poorer = dataclasses.replace(features, balance_wei=balance)
    richer = dataclasses.replace(features, balance_wei=balance + step)
    unknown = dataclasses.replace(features, balance_wei=None)

    assert score_rubric(richer).dimensions["value"] >= score_rubric(poorer).dimensions["value"]
    assert score_rubric(poorer).dimensions["value"] >= score_rubric(unknown).dimensions["value"]


@settings(max_examples=100)
@given(features=features_strategy(), name=st.sampled_from(["Compound", "MetaMask Swaps", "Stargate"]))
def test_another_protocol_never_lowers_diversity(features: Features, name: str) -> None:
    grown = dataclasses.replace(features, known_protocols=tuple(sorted({*features.known_protocols, name})))

    assert score_rubric(grown).dimensions["diversity"] >= score_rubric(features).dimensions["diversity"]


# No cliff: one more transaction in a real history

UNISWAP_V2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"


@st.composite
def transaction_strategy(draw: st.DrawFn, index: int, earliest: int) -> dict[str, str]:
    outgoing = draw(st.booleans())
    counterparty = draw(st.sampled_from([UNISWAP_V2_ROUTER, "0x" + f"{draw(st.integers(1, 2**160 - 1)):040x}"]))
    failed = draw(st.booleans())
    return {
        "hash": f"0x{index:064x}",
        "timeStamp": str(draw(st.integers(min_value=earliest, max_value=AS_OF_S))),
        "from": WALLET if outgoing else counterparty,
        "to": counterparty if outgoing else WALLET,
        "value": str(draw(st.integers(min_value=0, max_value=10**24))),
        "gasUsed": str(draw(st.integers(min_value=0, max_value=10**7))),
        "gasPrice": str(draw(st.integers(min_value=0, max_value=10**12))),
        "isError": "1" if failed else "0",
        "txreceipt_status": "0" if failed else "1",
        "input": draw(st.sampled_from(["0x", "0x7ff36ab5" + "00" * 32])),
    }


@st.composite
def history_and_one_more(draw: st.DrawFn) -> tuple[WalletHistory, WalletHistory]:
    first = draw(st.integers(min_value=AS_OF_S - 4000 * DAY, max_value=AS_OF_S))
    size = draw(st.integers(min_value=1, max_value=40))
    rows = [draw(transaction_strategy(index, first)) for index in range(size)]
    rows[0]["timeStamp"] = str(first)
    # The extra transaction falls within the existing span, so it cannot change the account's age.
    extra = draw(transaction_strategy(size, first))
    balance = draw(st.one_of(st.none(), _wei))

    def history(transactions: list[dict]) -> WalletHistory:
        return WalletHistory(
            address=WALLET, chain_id="1", sources=("txlist", "balance"),
            transactions=tuple(transactions), balance_wei=balance,
        )

    return history(rows), history([*rows, extra])


@settings(max_examples=300, deadline=None)
@given(pair=history_and_one_more())
def test_one_transaction_moves_total_little(pair: tuple[WalletHistory, WalletHistory]) -> None:
    before, after = (score_rubric(extract_features(history, AS_OF_MS)) for history in pair)

    assert abs(after.total - before.total) < 100
    for name in DIMENSION_MAX:
        assert abs(after.dimensions[name] - before.dimensions[name]) <= 40, name


def test_first_transaction_moves_total_little() -> None:
    empty = WalletHistory(address=WALLET, chain_id="1", sources=("txlist",))
    one = dataclasses.replace(
        empty,
        transactions=({"hash": "0x01", "timeStamp": str(AS_OF_S), "from": WALLET, "to": UNISWAP_V2_ROUTER,
                       "value": str(10**18), "input": "0x7ff36ab5", "isError": "0", "txreceipt_status": "1"},),
    )
    before = score_rubric(extract_features(empty, AS_OF_MS)).total
    after = score_rubric(extract_features(one, AS_OF_MS)).total

    assert 0 < after - before < 100
