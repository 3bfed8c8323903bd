"""EVM address validation and the canonical form the oracle signs."""

from __future__ import annotations

import re

from Crypto.Hash import keccak

from .errors import InvalidAddressError, shorten

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def canonical_address(text: str) -> str:
    """Validate ``text`` as an EVM address and return it in lower case.

    All-lower-case and all-upper-case hex digits are accepted as they are.
    Mixed case must carry a valid EIP-55 checksum, because a wrong checksum
    usually means a mistyped address.
    """
    if not isinstance(text, str) or not _ADDRESS.fullmatch(text):
        raise InvalidAddressError(
            f"invalid address {shorten(text)!r}: expected 0x followed by 40 hex digits"
        )

    digits = text[2:]
    if digits.islower() or digits.isupper() or digits.isdigit():
        return "0x" + digits.lower()

    expected = checksum_address(text)
    if text != expected:
        raise InvalidAddressError(
            f"invalid EIP-55 checksum in address {text!r}: "
            f"use {expected} or the all-lower-case form"
        )
    return "0x" + digits.lower()


def checksum_address(text: str) -> str:
    """Return the EIP-55 mixed-case form of a 0x + 40 hex address."""
    digits = text[2:].lower()
    digest = keccak.new(digest_bits=256, data=digits.encode("ascii")).hexdigest()
    cased = (char.upper() if int(nibble, 16) >= 8 else char for char, nibble in zip(digits, digest))
    return "0x" + "".join(cased)
