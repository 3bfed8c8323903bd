"""Address validation and the canonical form that gets signed."""

from __future__ import annotations

import pytest

from evm_score_oracle.address import canonical_address, checksum_address
from evm_score_oracle.errors import InvalidAddressError

# Checksummed examples published in EIP-55 itself.
EIP55_EXAMPLES = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55_EXAMPLES)
def test_checksum_matches_eip55(address):
    assert checksum_address(address.lower()) == address


@pytest.mark.parametrize("address", EIP55_EXAMPLES)
def test_checksummed_address_canonical(address):
    assert canonical_address(address) == address.lower()


@pytest.mark.parametrize(
    "address",
    ["0xc38b0528097b8076048bedf4330644f068cec2e6", "0xC38B0528097B8076048BEDF4330644F068CEC2E6"],
)
def test_single_case_accepted(address):
    assert canonical_address(address) == address.lower()


def test_bad_checksum_rejected_with_fix():
    wrong = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"

    with pytest.raises(InvalidAddressError, match="EIP-55") as raised:
        canonical_address(wrong)

    assert wrong in str(raised.value)
    assert "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" in str(raised.value)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "0x1234",
        "0x" + "g" * 40,
        "c38b0528097b8076048bedf4330644f068cec2e6",
        "0X" + "ab" * 20,
        "0x" + "ab" * 20 + "\n",
        " 0x" + "ab" * 20,
        "0x" + "ab" * 21,
    ],
)
def test_malformed_rejected(address):
    with pytest.raises(InvalidAddressError, match="expected 0x followed by 40 hex digits"):
        canonical_address(address)


def test_long_input_shortened_in_message():
    with pytest.raises(InvalidAddressError) as raised:
        canonical_address("x" * 10_000)

    assert len(str(raised.value)) < 200
