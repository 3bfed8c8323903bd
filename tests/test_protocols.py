"""The known-protocol table: exact, lower-case mainnet addresses only."""

from __future__ import annotations

import re

from support.recordings import RETAIL_DEFI, recorded_rows

from evm_score_oracle.protocols import KNOWN_CONTRACTS, protocol_at

UNISWAP_V2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"


def test_table_addresses_are_canonical() -> None:
    for address, name in KNOWN_CONTRACTS.items():
        assert re.fullmatch(r"0x[0-9a-f]{40}", address), address
        assert name and name == name.strip(), address


def test_exact_match_only() -> None:
    assert protocol_at(UNISWAP_V2_ROUTER, "1") == "Uniswap"
    assert protocol_at(UNISWAP_V2_ROUTER.upper().replace("0X", "0x"), "1") == "Uniswap"
    assert protocol_at(UNISWAP_V2_ROUTER[:-1], "1") is None
    assert protocol_at(UNISWAP_V2_ROUTER[:-1] + "e", "1") is None
    assert protocol_at(UNISWAP_V2_ROUTER + "00", "1") is None
    assert protocol_at("", "1") is None


def test_other_chains_match_nothing() -> None:
    assert protocol_at(UNISWAP_V2_ROUTER, "") == "Uniswap"
    assert protocol_at(UNISWAP_V2_ROUTER, "137") is None
    assert protocol_at(UNISWAP_V2_ROUTER, "42161") is None


def test_retail_wallet_contracts_recognised() -> None:
    sent_to = {row["to"] for row in recorded_rows(RETAIL_DEFI, "txlist") if row["from"] == RETAIL_DEFI}
    recognised = {address: KNOWN_CONTRACTS[address] for address in sent_to if address in KNOWN_CONTRACTS}

    assert recognised == {
        "0x881d40237659c251811cec9c364ef91dc08d300c": "MetaMask Swaps",
        "0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45": "Uniswap",
        "0xa0c68c638235ee32657e8f720a23cec1bfc77c77": "Polygon Bridge",
        "0x401f6c983ea34274ec46f84d70b31c151321188b": "Polygon Bridge",
        "0x7be8076f4ea4a4ad08075c2508e481d6c946d12b": "OpenSea",
        "0x4976fb03c32e5b8cfe2b6ccb31c09ba78ebaba41": "ENS",
        "0x084b1c3c81545d370f3634392de611caabff8148": "ENS",
    }
