"""BCS encoding, key files and signatures, checked against published vectors and JS libraries."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evm_score_oracle.errors import KeyFileError, UnusableInputError, VerificationError
from evm_score_oracle.signing import (
    OracleKey,
    bcs_string,
    bcs_u64,
    intent_message,
    score_message,
    sign_score,
    uleb128,
    verify_score,
    write_new_key,
)

JS_DIR = Path(__file__).parent / "js"
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ADDRESS = "0xc38b0528097b8076048bedf4330644f068cec2e6"


def key_from_secret(secret: bytes) -> OracleKey:
    return OracleKey(coincurve.PrivateKey(secret))


# BCS


def test_nautilus_weather_vector():
    # MystenLabs/nautilus publishes this encoding for its weather example:
    # IntentMessage{intent 0, timestamp_ms 1744038900000,
    # data {location: "San Francisco", temperature: 13}}.
    payload = bcs_string("San Francisco") + bcs_u64(13)

    encoded = intent_message(1744038900000, payload)

    assert encoded.hex() == "0020b1d110960100000d53616e204672616e636973636f0d00000000000000"


def test_score_message_layout():
    encoded = score_message(score=734, wallet_address=ADDRESS, timestamp_ms=1_700_000_000_000)

    assert encoded[0] == 0
    assert encoded[1:9] == (1_700_000_000_000).to_bytes(8, "little")
    assert encoded[9:17] == (734).to_bytes(8, "little")
    assert encoded[17] == 42
    assert encoded[18:] == ADDRESS.encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001")],
)
def test_uleb128_known_values(value, expected):
    assert uleb128(value).hex() == expected


def test_u64_rejects_out_of_range():
    with pytest.raises(ValueError, match="u64 out of range"):
        bcs_u64(2**64)
    with pytest.raises(ValueError, match="u64 out of range"):
        bcs_u64(-1)


@given(st.integers(min_value=0, max_value=2**63))
def test_uleb128_decodes_back(value):
    encoded = uleb128(value)

    decoded = 0
    for position, byte in enumerate(encoded):
        decoded |= (byte & 0x7F) << (7 * position)

    assert decoded == value
    assert all(byte & 0x80 for byte in encoded[:-1])
    assert not encoded[-1] & 0x80


# Signatures


@settings(max_examples=50, deadline=None)
@given(
    score=st.integers(min_value=0, max_value=1000),
    timestamp_ms=st.integers(min_value=0, max_value=2**64 - 1),
    wallet_address=st.text(max_size=64),
)
def test_sign_then_verify(score, timestamp_ms, wallet_address):
    key = OracleKey.generate()

    signature = sign_score(key, score=score, wallet_address=wallet_address, timestamp_ms=timestamp_ms)

    assert len(bytes.fromhex(signature)) == 64
    assert int(signature[64:], 16) <= CURVE_ORDER // 2
    verify_score(
        key.public_key_hex, score=score, wallet_address=wallet_address, timestamp_ms=timestamp_ms, signature_hex=signature
    )


def test_signature_is_over_sha256_of_bcs():
    key = OracleKey.generate()
    message = score_message(score=500, wallet_address=ADDRESS, timestamp_ms=1)
    signature = bytes.fromhex(sign_score(key, score=500, wallet_address=ADDRESS, timestamp_ms=1))

    digest = hashlib.sha256(message).digest()
    der = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(signature))
    public_key = coincurve.PublicKey(bytes.fromhex(key.public_key_hex))

    assert public_key.verify(der, digest, hasher=None)


@pytest.mark.parametrize(
    "change",
    [
        {"score": 501},
        {"timestamp_ms": 2},
        {"wallet_address": "0xc38b0528097b8076048bedf4330644f068cec2e7"},
    ],
)
def test_verify_rejects_changed_field(change):
    key = OracleKey.generate()
    fields = {"score": 500, "wallet_address": ADDRESS, "timestamp_ms": 1}
    signature = sign_score(key, **fields)

    with pytest.raises(VerificationError):
        verify_score(key.public_key_hex, signature_hex=signature, **{**fields, **change})


def test_verify_rejects_other_key():
    signature = sign_score(OracleKey.generate(), score=1, wallet_address=ADDRESS, timestamp_ms=1)

    with pytest.raises(VerificationError):
        verify_score(OracleKey.generate().public_key_hex, score=1, wallet_address=ADDRESS, timestamp_ms=1, signature_hex=signature)


def test_verify_rejects_high_s():
    key = OracleKey.generate()
    signature = bytes.fromhex(sign_score(key, score=1, wallet_address=ADDRESS, timestamp_ms=1))
    high_s = CURVE_ORDER - int.from_bytes(signature[32:], "big")
    malleated = signature[:32] + high_s.to_bytes(32, "big")

    with pytest.raises(VerificationError, match="high s"):
        verify_score(key.public_key_hex, score=1, wallet_address=ADDRESS, timestamp_ms=1, signature_hex=malleated.hex())


def test_verify_accepts_raw_public_key():
    key = OracleKey.generate()
    signature = sign_score(key, score=9, wallet_address=ADDRESS, timestamp_ms=9)

    verify_score(key.raw_public_key.hex(), score=9, wallet_address=ADDRESS, timestamp_ms=9, signature_hex=signature)


@pytest.mark.parametrize(
    ("public_key", "signature", "message"),
    [
        ("zz", "00" * 64, "not hex"),
        ("02" + "00" * 32, "00" * 64, "do not decode"),
        (None, "00" * 63, "expected 64 bytes"),
    ],
)
def test_verify_unusable_input(public_key, signature, message):
    public_key = public_key or OracleKey.generate().public_key_hex

    with pytest.raises(UnusableInputError, match=message):
        verify_score(public_key, score=1, wallet_address=ADDRESS, timestamp_ms=1, signature_hex=signature)


# Key files


def test_load_key_file(tmp_path):
    path = tmp_path / "ecdsa.sec"
    written = write_new_key(path)

    loaded = OracleKey.load(path)

    assert loaded.public_key_hex == written.public_key_hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keygen_refuses_overwrite(tmp_path):
    path = tmp_path / "ecdsa.sec"
    path.write_bytes(b"\x01" * 32)

    with pytest.raises(KeyFileError, match="exists already"):
        write_new_key(path)
    assert path.read_bytes() == b"\x01" * 32


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x01" * 31, "exactly 32 raw bytes, got 31"),
        (b"\x01" * 33, "exactly 32 raw bytes, got 33"),
        (b"\x00" * 32, "not a valid secp256k1 secret key"),
        (CURVE_ORDER.to_bytes(32, "big"), "not a valid secp256k1 secret key"),
        (b"\xff" * 32, "not a valid secp256k1 secret key"),
    ],
)
def test_load_rejects_bad_key(tmp_path, content, message):
    path = tmp_path / "ecdsa.sec"
    path.write_bytes(content)

    with pytest.raises(KeyFileError, match=message) as raised:
        OracleKey.load(path)
    assert content.hex() not in str(raised.value)


def test_load_missing_key_names_file(tmp_path):
    with pytest.raises(KeyFileError, match="ecdsa.sec not found"):
        OracleKey.load(tmp_path / "ecdsa.sec")


def test_load_checks_public_file(tmp_path):
    path = tmp_path / "ecdsa.sec"
    key = write_new_key(path)
    public_path = tmp_path / "ecdsa.pub"

    public_path.write_bytes(key.raw_public_key)
    assert OracleKey.load(path).public_key_hex == key.public_key_hex

    public_path.write_bytes(OracleKey.generate().raw_public_key)
    with pytest.raises(KeyFileError, match="does not match"):
        OracleKey.load(path)

    public_path.write_bytes(key.raw_public_key[:63])
    with pytest.raises(KeyFileError, match="must be 64 bytes"):
        OracleKey.load(path)


def test_load_public_file_unreadable(tmp_path):
    path = tmp_path / "ecdsa.sec"
    write_new_key(path)

    (tmp_path / "ecdsa.pub").mkdir()
    with pytest.raises(KeyFileError, match="cannot read public key file"):
        OracleKey.load(path)

    (tmp_path / "ecdsa.pub").rmdir()
    (tmp_path / "ecdsa.pub").symlink_to(tmp_path / "missing.pub")
    with pytest.raises(KeyFileError, match="cannot read public key file"):
        OracleKey.load(path)


def test_load_reads_bounded_bytes():
    # A device that never ends must fail fast instead of hanging start-up.
    with pytest.raises(KeyFileError, match="exactly 32 raw bytes, got 33"):
        OracleKey.load(Path("/dev/zero"))


def test_load_key_directory(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read key file"):
        OracleKey.load(tmp_path)


def test_key_repr_hides_secret():
    secret = bytes(range(1, 33))
    key = key_from_secret(secret)

    assert secret.hex() not in repr(key)
    assert key.public_key_hex in repr(key)


# Cross-check with the JavaScript libraries a Sui client uses


def run_crosscheck(cases: list[dict]) -> list[dict]:
    node = shutil.which("node")
    assert node, "node is required for the BCS/secp256k1 cross-check"
    assert (JS_DIR / "node_modules" / "@mysten" / "bcs").is_dir(), "run 'npm ci' in tests/js first (.ci/run does)"

    completed = subprocess.run(
        [node, "crosscheck.mjs"],
        cwd=JS_DIR,
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)["results"]


def test_javascript_libraries_agree():
    secrets = [bytes(range(1, 33)), os.urandom(31) + b"\x01", (CURVE_ORDER - 1).to_bytes(32, "big")]
    fields = [
        {"score": 0, "wallet_address": ADDRESS, "timestamp_ms": 0},
        {"score": 1000, "wallet_address": "0x" + "ab" * 20, "timestamp_ms": 1_744_038_900_000},
        {"score": 2**64 - 1, "wallet_address": "é" * 100, "timestamp_ms": 2**64 - 1},
    ]
    cases = []
    for secret, values in zip(secrets, fields):
        key = key_from_secret(secret)
        message = score_message(**values)
        signature = sign_score(key, **values)
        cases.append(
            {
                # Decimal strings, because JSON numbers above 2^53 lose precision in JavaScript.
                "score": str(values["score"]),
                "timestamp_ms": str(values["timestamp_ms"]),
                "wallet_address": values["wallet_address"],
                "secret_key": secret.hex(),
                "public_key": key.public_key_hex,
                "message": message.hex(),
                "signature": signature,
            }
        )

    results = run_crosscheck(cases)

    assert len(results) == len(cases)
    for case, result in zip(cases, results):
        assert result["message"] == case["message"]
        assert result["public_key"] == case["public_key"]
        assert result["verifies"] is True
        # Both libraries use RFC 6979 nonces with low s, so the signatures are equal byte for byte.
        assert result["signature"] == case["signature"]
