"""BCS encoding and secp256k1 signatures that a Sui Move contract can verify.

The signed message is the BCS encoding of Nautilus' ``IntentMessage``::

    IntentMessage { intent: u8 = 0, timestamp_ms: u64, data: ScoreUpdatePayload }
    ScoreUpdatePayload { score: u64, wallet_address: String }

Integers are little-endian; a string is its UTF-8 bytes behind a ULEB128
length. The signature is ECDSA over SHA-256 of those bytes, 64 bytes r||s with
low s, as ``sui::ecdsa_k1::secp256k1_verify(sig, pk, msg, 1)`` expects.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

import coincurve
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from .errors import KeyFileError, UnusableInputError, VerificationError

INTENT_SCOPE = 0
KEY_BYTES = 32
RAW_PUBLIC_KEY_BYTES = 64
SIGNATURE_BYTES = 64
U64_MAX = 2**64 - 1

# Order of the secp256k1 group; a valid secret key is in [1, n - 1].
_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# BCS


def uleb128(value: int) -> bytes:
    """Encode a non-negative integer as ULEB128, BCS's length prefix."""
    if value < 0:
        raise ValueError(f"ULEB128 needs a non-negative integer, got {value}")

    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def bcs_u64(value: int) -> bytes:
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"u64 out of range: {value}")
    return struct.pack("<Q", value)


def bcs_string(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return uleb128(len(encoded)) + encoded


def intent_message(timestamp_ms: int, payload: bytes) -> bytes:
    """Wrap an already encoded payload in a BCS ``IntentMessage``."""
    return bytes([INTENT_SCOPE]) + bcs_u64(timestamp_ms) + payload


def score_message(*, score: int, wallet_address: str, timestamp_ms: int) -> bytes:
    """Encode the message the oracle signs for one score."""
    payload = bcs_u64(score) + bcs_string(wallet_address)
    return intent_message(timestamp_ms, payload)


# Keys


@dataclass(frozen=True)
class OracleKey:
    """The enclave's secp256k1 signing key. Its secret never leaves this object."""

    _private: coincurve.PrivateKey

    @classmethod
    def load(cls, path: Path) -> OracleKey:
        """Read a 32-byte raw secret key file and check its public half.

        When ``ecdsa.pub`` (64 bytes X||Y, the Oyster layout) sits beside the
        key file, it must match the secret, because a mismatch means the
        enclave would attest one key while the oracle signs with another.
        """
        secret = _read_secret(path)
        key = cls(coincurve.PrivateKey(secret))
        key._check_public_file(path.with_suffix(".pub"))
        return key

    @classmethod
    def generate(cls) -> OracleKey:
        """Make a throwaway key, for development and tests."""
        return cls(coincurve.PrivateKey(_random_secret()))

    @property
    def public_key_hex(self) -> str:
        """33-byte compressed public key, hex, as GET /public-key serves it."""
        return self._private.public_key.format(compressed=True).hex()

    @property
    def raw_public_key(self) -> bytes:
        """64-byte X||Y public key, the layout of Oyster's ``ecdsa.pub``."""
        return self._private.public_key.format(compressed=False)[1:]

    def sign(self, message: bytes) -> bytes:
        """Sign SHA-256(message); return 64 bytes r||s with low s."""
        recoverable = self._private.sign_recoverable(message, hasher=_sha256)
        return recoverable[:SIGNATURE_BYTES]

    def __repr__(self) -> str:
        return f"OracleKey(public_key={self.public_key_hex})"

    def _check_public_file(self, path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            return

        raw = _read_at_most(path, RAW_PUBLIC_KEY_BYTES + 1, "public key file")
        if len(raw) != RAW_PUBLIC_KEY_BYTES:
            raise KeyFileError(
                f"public key file {path} must be {RAW_PUBLIC_KEY_BYTES} bytes (X||Y), got {len(raw)}"
            )
        if raw != self.raw_public_key:
            raise KeyFileError(
                f"public key file {path} does not match the secret key beside it; "
                "refusing to sign with a key the enclave does not attest"
            )


def write_new_key(path: Path) -> OracleKey:
    """Write a fresh 32-byte secret key to ``path`` with mode 0600.

    Raises ``KeyFileError`` when the file exists, so a real key is never
    overwritten by accident.
    """
    secret = _random_secret()
    if path.is_dir():
        raise KeyFileError(f"key path {path} is a directory; give a file name such as {path / 'ecdsa.sec'}")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise KeyFileError(f"key file {path} exists already; remove it or choose another path") from error
    except OSError as error:
        raise KeyFileError(f"cannot create key file {path}: {error.strerror}") from error

    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secret)
    return OracleKey(coincurve.PrivateKey(secret))


def _read_secret(path: Path) -> bytes:
    if not path.exists() and not path.is_symlink():
        raise KeyFileError(
            f"key file {path} not found; set ORACLE_KEY_FILE or run "
            "'evm-score-oracle keygen PATH' for a development key"
        )

    secret = _read_at_most(path, KEY_BYTES + 1, "key file")
    if len(secret) != KEY_BYTES:
        raise KeyFileError(f"key file {path} must hold exactly {KEY_BYTES} raw bytes, got {len(secret)}")
    if not 0 < int.from_bytes(secret, "big") < _CURVE_ORDER:
        raise KeyFileError(f"key file {path} is not a valid secp256k1 secret key (zero or not below the curve order)")
    return secret


def _read_at_most(path: Path, limit: int, what: str) -> bytes:
    # Reading only a few bytes keeps a wrong path such as /dev/zero from hanging start-up.
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as error:
        raise KeyFileError(f"cannot read {what} {path}: {error.strerror or error}") from error


def _random_secret() -> bytes:
    while True:
        secret = secrets.token_bytes(KEY_BYTES)
        if 0 < int.from_bytes(secret, "big") < _CURVE_ORDER:
            return secret


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# Scores


def sign_score(key: OracleKey, *, score: int, wallet_address: str, timestamp_ms: int) -> str:
    """Sign one score and return the 64-byte signature as hex."""
    message = score_message(score=score, wallet_address=wallet_address, timestamp_ms=timestamp_ms)
    return key.sign(message).hex()


def verify_score(
    public_key_hex: str, *, score: int, wallet_address: str, timestamp_ms: int, signature_hex: str
) -> None:
    """Recompute the signed message and check the signature against it.

    Raises ``UnusableInputError`` when the key or signature cannot be decoded,
    and ``VerificationError`` when they decode but do not verify.
    """
    public_key = _parse_public_key(public_key_hex)
    signature = _parse_signature(signature_hex)
    message = score_message(score=score, wallet_address=wallet_address, timestamp_ms=timestamp_ms)

    if int.from_bytes(signature[32:], "big") > _CURVE_ORDER // 2:
        raise VerificationError("signature has a high s value; Sui accepts only low-s signatures")

    der = cdata_to_der(deserialize_compact(signature))
    if not public_key.verify(der, message, hasher=_sha256):
        raise VerificationError("signature does not match the score, address and timestamp for this public key")


def _parse_public_key(text: str) -> coincurve.PublicKey:
    raw = _parse_hex(text, "public key")
    if len(raw) == RAW_PUBLIC_KEY_BYTES:
        raw = b"\x04" + raw
    try:
        return coincurve.PublicKey(raw)
    except ValueError as error:
        raise UnusableInputError(
            "invalid public key: expected a 33-byte compressed, 65-byte uncompressed "
            f"or 64-byte X||Y secp256k1 key, got {len(raw)} bytes that do not decode"
        ) from error


def _parse_signature(text: str) -> bytes:
    raw = _parse_hex(text, "signature")
    if len(raw) != SIGNATURE_BYTES:
        raise UnusableInputError(f"invalid signature: expected {SIGNATURE_BYTES} bytes r||s, got {len(raw)}")
    return raw


def _parse_hex(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise UnusableInputError(f"invalid {what}: expected a hex string, got {type(text).__name__}")
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError as error:
        raise UnusableInputError(f"invalid {what}: not hex") from error
