"""Tests for attestation verification against four recorded Oyster documents.

The documents were recorded by Marlin's oyster-monorepo for its SDK tests
(sdks/rs/src/testcases/). Two chain to the AWS Nitro root and two to the
Oyster mock root. The expected values are the ones published with the
recordings, so they do not come from the code under test.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cbor2
import coincurve
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from evm_score_oracle.attestation import (
    ROOT_KEYS,
    AttestationFacts,
    check_key_binding,
    compute_image_id,
    load_document,
    parse_expected_pcrs,
    run_verify_command,
    verify_attestation,
    verify_certificate_chain,
)
from evm_score_oracle.errors import (
    BadSignatureError,
    BrokenChainError,
    CertificateNotValidError,
    DocumentTooOldError,
    InvalidInputError,
    KeyBindingError,
    NotCborError,
    NotCoseSign1Error,
    PcrMismatchError,
    UntrustedRootError,
    UpstreamResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

DATA = Path(__file__).parent / "data" / "attestations"
ZERO_PCR = bytes(48)


@dataclass(frozen=True)
class Expected:
    file: str
    root: str
    timestamp_ms: int
    pcr0: str
    pcr1: str
    pcr2: str
    pcr16: str
    public_key: str
    user_data: bytes | None
    image_id: str


EXPECTED = [
    Expected(
        file="real-nitro-secp256k1-key.bin",
        root="aws",
        timestamp_ms=1734075478960,
        pcr0="189038eccf28a3a098949e402f3b3d86a876f4915c5b02d546abb5d8c507ceb1755b8192d8cfca66e8f226160ca4c7a6",
        pcr1="5d3938eb05288e20a981038b1861062ff4174884968a39aee5982b312894e60561883576cc7381d1a7d05b809936bd16",
        pcr2="6c3ef363c488a9a86faa63a44653fd806e645d4540b40540876f3b811fc1bceecf036a4703f07587c501ee45bb56a1aa",
        pcr16="00" * 48,
        public_key=(
            "e646f8b0071d5ba75931402522cc6a5c42a84a6fea238864e5ac9a0e12d83bd3"
            "6d0c8109d3ca2b699fce8d082bf313f5d2ae249bb275b6b6e91e0fcd9262f4bb"
        ),
        user_data=None,
        image_id="a6b0824d3c47f51542b3a18e6245c408490bef88ddc8d5e1bf8b95ec7eba1602",
    ),
    Expected(
        file="real-nitro-with-pcr16.bin",
        root="aws",
        timestamp_ms=1745922759691,
        pcr0="2984ab215649c40ffe8f8b80cfadee47f1b06760f7d9257981f64b2758c347fafa6c733591b25e75ae7e9d1cb86ad5df",
        pcr1="ed7759aa996a2e94c6086f24f61f354f75f9ea7f93a74f55d65c2cb5590d1af3930c9adbc57bb543764fa1f5c444f495",
        pcr2="27216d3fbedb900be4bdbdb2d5be27b9e8254989e123aaa97f24d1b0fd1016d001323eb9d09a9d25e8e1e1298d68e9c6",
        pcr16="30e84b2d7eeffe6d90a475797b35e59a11b0da473eee4b3b8edfe73daf0279801bb18730c39db7f27f2f77b7b458cb9e",
        public_key="2af77183f4772f00e269c7ffadb0eca298bf76711bbe94471a4944ede5ada084",
        user_data=b"",
        image_id="c28909dc8803cf0edf6113f3fb81d0494f4c92b63087242200e18a5be347aacd",
    ),
    Expected(
        file="mock-root.bin",
        root="mock",
        timestamp_ms=1734080745008,
        pcr0="00" * 48,
        pcr1="01" * 48,
        pcr2="02" * 48,
        pcr16="00" * 48,
        public_key="12345678",
        user_data=bytes.fromhex("abcdef"),
        image_id="b45dfd1807c1f4b81ef28b44682fba5d4d5522baac808a44b7302cbfda5144e7",
    ),
    Expected(
        file="mock-root-with-pcr16.bin",
        root="mock",
        timestamp_ms=1746022043865,
        pcr0="00" * 48,
        pcr1="01" * 48,
        pcr2="02" * 48,
        pcr16="10" * 48,
        public_key="12345678",
        user_data=bytes.fromhex("abcdef"),
        image_id="20a182763745f956ddee6f8e9d14a66e23db836c0eb1a769a2ef4d3ab77bef1b",
    ),
]

SECP256K1_DOC = "real-nitro-secp256k1-key.bin"
X25519_DOC = "real-nitro-with-pcr16.bin"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def split(document: bytes) -> tuple[list, dict]:
    """Decode a document into its COSE array and its payload map."""
    cose = cbor2.loads(document)
    return cose, cbor2.loads(cose[2])


def rebuild(cose: list, payload: dict) -> bytes:
    """Re-encode a document with a changed payload but the original signature."""
    return cbor2.dumps([cose[0], cose[1], cbor2.dumps(payload), cose[3]])


def flip_byte(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def compressed_key(xy: bytes) -> str:
    return coincurve.PublicKey(b"\x04" + xy).format(compressed=True).hex()


# Real documents


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda case: case.file)
def test_real_document_decodes_expected_values(expected: Expected) -> None:
    facts = verify_attestation(read(expected.file), root=expected.root)

    assert facts.timestamp_ms == expected.timestamp_ms
    assert facts.pcrs[0].hex() == expected.pcr0
    assert facts.pcrs[1].hex() == expected.pcr1
    assert facts.pcrs[2].hex() == expected.pcr2
    assert facts.pcrs[16].hex() == expected.pcr16
    assert facts.public_key is not None
    assert facts.public_key.hex() == expected.public_key
    assert facts.user_data == expected.user_data
    assert facts.nonce is None
    assert facts.image_id == expected.image_id
    assert facts.root == expected.root
    assert facts.module_id.startswith("i-")


def test_image_id_matches_definition() -> None:
    pcrs = {0: b"\x00" * 48, 1: b"\x01" * 48, 2: b"\x02" * 48}
    preimage = (0x00010007).to_bytes(4, "big") + pcrs[0] + pcrs[1] + pcrs[2] + ZERO_PCR

    assert compute_image_id(pcrs) == hashlib.sha256(preimage).hexdigest()
    assert compute_image_id({**pcrs, 16: ZERO_PCR}) == compute_image_id(pcrs)
    assert compute_image_id({**pcrs, 16: b"\x10" * 48}) != compute_image_id(pcrs)


def test_facts_as_dict_is_json_hex() -> None:
    facts = verify_attestation(read("mock-root.bin"), root="mock")

    output = json.loads(json.dumps(facts.as_dict()))

    assert output["timestamp_ms"] == 1734080745008
    assert output["root"] == "mock"
    assert output["pcrs"]["1"] == "01" * 48
    assert output["pcrs"]["16"] == "00" * 48
    assert output["public_key"] == "12345678"
    assert output["user_data"] == "abcdef"
    assert output["nonce"] is None
    assert output["image_id"] == "b45dfd1807c1f4b81ef28b44682fba5d4d5522baac808a44b7302cbfda5144e7"


def test_facts_are_frozen() -> None:
    facts = verify_attestation(read("mock-root.bin"), root="mock")

    with pytest.raises(AttributeError):
        facts.image_id = "0" * 64  # type: ignore[misc]


# COSE and CBOR structure


def test_cose_tag_18_is_accepted() -> None:
    tagged = cbor2.dumps(cbor2.CBORTag(18, cbor2.loads(read(SECP256K1_DOC))))

    facts = verify_attestation(tagged)

    assert facts.image_id == EXPECTED[0].image_id


def test_other_cbor_tag_is_rejected() -> None:
    tagged = cbor2.dumps(cbor2.CBORTag(98, cbor2.loads(read(SECP256K1_DOC))))

    with pytest.raises(NotCoseSign1Error, match="tag 98"):
        verify_attestation(tagged)


@pytest.mark.parametrize(
    "document",
    [b"", b"\xff\xff", b"not an attestation", read(SECP256K1_DOC)[:-10], read(SECP256K1_DOC) + b"\x00"],
    ids=["empty", "break-codes", "text", "truncated", "trailing-byte"],
)
def test_non_cbor_document_is_rejected(document: bytes) -> None:
    with pytest.raises(NotCborError):
        verify_attestation(document)


@pytest.mark.parametrize(
    "value",
    [{"a": 1}, [b"", {}, b""], [1, {}, b"", b""], [cbor2.dumps({1: -35}), [], b"", b""]],
    ids=["map", "three-items", "int-header", "list-unprotected"],
)
def test_non_cose_value_is_rejected(value: object) -> None:
    with pytest.raises(NotCoseSign1Error):
        verify_attestation(cbor2.dumps(value))


def test_wrong_cose_algorithm_is_rejected() -> None:
    cose, _ = split(read(SECP256K1_DOC))
    cose[0] = cbor2.dumps({1: -7})

    with pytest.raises(NotCoseSign1Error, match="-7"):
        verify_attestation(cbor2.dumps(cose))


def test_payload_that_is_not_cbor_is_rejected() -> None:
    cose, _ = split(read(SECP256K1_DOC))
    cose[2] = cose[2][:-5]

    with pytest.raises(NotCborError, match="payload"):
        verify_attestation(cbor2.dumps(cose))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest", "SHA256"),
        ("timestamp", "yesterday"),
        ("pcrs", {0: b"\x00" * 32}),
        ("pcrs", {40: ZERO_PCR}),
        ("cabundle", []),
        ("certificate", None),
        ("public_key", "not bytes"),
    ],
)
def test_malformed_payload_field_is_rejected(field: str, value: object) -> None:
    cose, payload = split(read(SECP256K1_DOC))
    payload[field] = value

    with pytest.raises(NotCoseSign1Error, match=field if field != "pcrs" else "PCR"):
        verify_attestation(rebuild(cose, payload))


def test_missing_payload_field_is_rejected() -> None:
    cose, payload = split(read(SECP256K1_DOC))
    del payload["module_id"]

    with pytest.raises(NotCoseSign1Error, match="module_id"):
        verify_attestation(rebuild(cose, payload))


# Tampering


def test_tampered_pcr_fails_signature() -> None:
    cose, payload = split(read(SECP256K1_DOC))
    payload["pcrs"][0] = flip_byte(payload["pcrs"][0], 0)

    with pytest.raises(BadSignatureError):
        verify_attestation(rebuild(cose, payload))


def test_tampered_public_key_fails_signature() -> None:
    cose, payload = split(read(SECP256K1_DOC))
    payload["public_key"] = flip_byte(payload["public_key"], 63)

    with pytest.raises(BadSignatureError):
        verify_attestation(rebuild(cose, payload))


def test_reencoded_untouched_payload_still_verifies() -> None:
    # Guards the tampering tests: re-encoding alone must not break the signature.
    cose, payload = split(read(SECP256K1_DOC))

    facts = verify_attestation(rebuild(cose, payload))

    assert facts.image_id == EXPECTED[0].image_id


@pytest.mark.parametrize("position", [0, 47, 48, 95])
def test_tampered_signature_fails(position: int) -> None:
    cose, _ = split(read(SECP256K1_DOC))
    cose[3] = flip_byte(cose[3], position)

    with pytest.raises(BadSignatureError):
        verify_attestation(cbor2.dumps(cose))


def test_short_signature_fails() -> None:
    cose, _ = split(read(SECP256K1_DOC))
    cose[3] = cose[3][:64]

    with pytest.raises(BadSignatureError, match="96"):
        verify_attestation(cbor2.dumps(cose))


@pytest.mark.parametrize("bundle_index", [1, 2, 3])
def test_tampered_cabundle_signature_breaks_chain(bundle_index: int) -> None:
    # The last bytes of a DER certificate belong to its signature value.
    cose, payload = split(read(SECP256K1_DOC))
    certificate = payload["cabundle"][bundle_index]
    payload["cabundle"][bundle_index] = flip_byte(certificate, len(certificate) - 1)

    with pytest.raises(BrokenChainError, match="signature"):
        verify_attestation(rebuild(cose, payload))


def test_tampered_leaf_signature_breaks_chain() -> None:
    cose, payload = split(read(SECP256K1_DOC))
    payload["certificate"] = flip_byte(payload["certificate"], len(payload["certificate"]) - 1)

    with pytest.raises(BrokenChainError, match="certificate 0"):
        verify_attestation(rebuild(cose, payload))


def test_corrupt_certificate_der_breaks_chain() -> None:
    cose, payload = split(read(SECP256K1_DOC))
    payload["cabundle"][2] = payload["cabundle"][2][:100]

    with pytest.raises(BrokenChainError, match="DER"):
        verify_attestation(rebuild(cose, payload))


def test_missing_intermediate_breaks_chain() -> None:
    cose, payload = split(read(SECP256K1_DOC))
    del payload["cabundle"][2]

    with pytest.raises(BrokenChainError, match="names issuer"):
        verify_attestation(rebuild(cose, payload))


def make_certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    ca: bool,
    path_length: int | None = None,
) -> bytes:
    """Build a P-384 certificate valid through 2024, signed by ``issuer`` or by itself."""
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2024, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2025, 1, 1, tzinfo=timezone.utc))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA384()).public_bytes(Encoding.DER)


MID_2024_MS = int(datetime(2024, 6, 1, tzinfo=timezone.utc).timestamp() * 1000)


def test_issuer_that_is_not_a_ca_breaks_chain() -> None:
    root_key, middle_key, leaf_key = (ec.generate_private_key(ec.SECP384R1()) for _ in range(3))
    root = make_certificate("test root", root_key, None, ca=True)
    middle = make_certificate("not a ca", middle_key, ("test root", root_key), ca=False)
    leaf = make_certificate("leaf", leaf_key, ("not a ca", middle_key), ca=False)

    with pytest.raises(BrokenChainError, match="not a CA"):
        verify_certificate_chain(leaf, [root, middle], at_ms=MID_2024_MS)


def test_path_length_constraint_breaks_chain() -> None:
    root_key, middle_key, leaf_key = (ec.generate_private_key(ec.SECP384R1()) for _ in range(3))
    root = make_certificate("test root", root_key, None, ca=True, path_length=0)
    middle = make_certificate("middle ca", middle_key, ("test root", root_key), ca=True)
    leaf = make_certificate("leaf", leaf_key, ("middle ca", middle_key), ca=False)

    with pytest.raises(BrokenChainError, match="allows 0 CA certificates"):
        verify_certificate_chain(leaf, [root, middle], at_ms=MID_2024_MS)


def test_valid_chain_to_unknown_root_is_untrusted() -> None:
    root_key, leaf_key = (ec.generate_private_key(ec.SECP384R1()) for _ in range(2))
    root = make_certificate("test root", root_key, None, ca=True)
    leaf = make_certificate("leaf", leaf_key, ("test root", root_key), ca=False)

    with pytest.raises(UntrustedRootError, match="CN=test root"):
        verify_certificate_chain(leaf, [root], at_ms=MID_2024_MS)


# Roots


@pytest.mark.parametrize(
    ("file", "root"),
    [
        ("real-nitro-secp256k1-key.bin", "mock"),
        ("real-nitro-with-pcr16.bin", "mock"),
        ("mock-root.bin", "aws"),
        ("mock-root-with-pcr16.bin", "aws"),
    ],
)
def test_wrong_root_is_untrusted(file: str, root: str) -> None:
    with pytest.raises(UntrustedRootError, match=f"'{root}' root key"):
        verify_attestation(read(file), root=root)


def test_aws_root_is_default() -> None:
    with pytest.raises(UntrustedRootError):
        verify_attestation(read("mock-root.bin"))


def test_unknown_root_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="unknown attestation root 'local'"):
        verify_attestation(read("mock-root.bin"), root="local")


def test_root_keys_match_bundled_roots() -> None:
    for file, root in (("real-nitro-secp256k1-key.bin", "aws"), ("mock-root.bin", "mock")):
        _, payload = split(read(file))
        root_certificate = x509.load_der_x509_certificate(payload["cabundle"][0])

        point = root_certificate.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

        assert point[1:] == ROOT_KEYS[root]


def test_aws_root_certificate_fingerprint() -> None:
    _, payload = split(read(SECP256K1_DOC))
    fingerprint = hashlib.sha256(payload["cabundle"][0]).hexdigest()

    assert fingerprint == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"


# Validity at the document's time


def leaf_window(file: str) -> tuple[bytes, list[bytes], int, int]:
    _, payload = split(read(file))
    leaf = x509.load_der_x509_certificate(payload["certificate"])
    not_before_ms = int(leaf.not_valid_before_utc.timestamp() * 1000)
    not_after_ms = int(leaf.not_valid_after_utc.timestamp() * 1000)
    return payload["certificate"], payload["cabundle"], not_before_ms, not_after_ms


def test_chain_valid_at_document_time() -> None:
    certificate, cabundle, _, _ = leaf_window(SECP256K1_DOC)

    leaf = verify_certificate_chain(certificate, cabundle, at_ms=EXPECTED[0].timestamp_ms)

    assert "i-0f1cd77d37fd8bcc9" in leaf.subject.rfc4514_string()


def test_chain_valid_at_leaf_window_edges() -> None:
    certificate, cabundle, not_before_ms, not_after_ms = leaf_window(SECP256K1_DOC)

    verify_certificate_chain(certificate, cabundle, at_ms=not_before_ms)
    verify_certificate_chain(certificate, cabundle, at_ms=not_after_ms)


def test_chain_after_leaf_expiry_is_not_valid() -> None:
    certificate, cabundle, _, not_after_ms = leaf_window(SECP256K1_DOC)

    with pytest.raises(CertificateNotValidError, match="certificate 0") as caught:
        verify_certificate_chain(certificate, cabundle, at_ms=not_after_ms + 1000)

    assert "2024-12-13T08:57:45" in str(caught.value)


def test_chain_before_leaf_start_is_not_valid() -> None:
    certificate, cabundle, not_before_ms, _ = leaf_window(SECP256K1_DOC)

    with pytest.raises(CertificateNotValidError, match="certificate 0"):
        verify_certificate_chain(certificate, cabundle, at_ms=not_before_ms - 1000)


def test_chain_checks_intermediate_validity() -> None:
    # The regional intermediate expires 2025-01-01, long before the root does.
    certificate, cabundle, _, _ = leaf_window(SECP256K1_DOC)
    regional = x509.load_der_x509_certificate(cabundle[1])
    after_regional_ms = int((regional.not_valid_after_utc + timedelta(days=1)).timestamp() * 1000)

    with pytest.raises(CertificateNotValidError):
        verify_certificate_chain(certificate, cabundle, at_ms=after_regional_ms)


def test_expired_leaf_verifies_at_document_time() -> None:
    # The leaf expired in December 2024, so a check against the current time would fail.
    facts = verify_attestation(read(SECP256K1_DOC))

    assert facts.timestamp_ms == EXPECTED[0].timestamp_ms


# Age and PCRs


def test_document_older_than_max_age_fails() -> None:
    signed_ms = EXPECTED[0].timestamp_ms

    with pytest.raises(DocumentTooOldError, match="60.0 s old"):
        verify_attestation(read(SECP256K1_DOC), max_age_s=30, now_ms=signed_ms + 60_000)


def test_document_within_max_age_passes() -> None:
    signed_ms = EXPECTED[0].timestamp_ms

    facts = verify_attestation(read(SECP256K1_DOC), max_age_s=60, now_ms=signed_ms + 60_000)

    assert facts.timestamp_ms == signed_ms


def test_max_age_defaults_to_current_time() -> None:
    # The recorded document is from December 2024, so one day is far too short now.
    with pytest.raises(DocumentTooOldError):
        verify_attestation(read(SECP256K1_DOC), max_age_s=86_400)


@pytest.mark.parametrize("max_age_s", [-1.0, float("nan"), float("inf")])
def test_invalid_max_age_is_rejected(max_age_s: float) -> None:
    with pytest.raises(InvalidInputError, match="maximum age"):
        verify_attestation(read(SECP256K1_DOC), max_age_s=max_age_s)


def test_expected_pcrs_match() -> None:
    expected = {index: bytes.fromhex(getattr(EXPECTED[0], f"pcr{index}")) for index in (0, 1, 2, 16)}

    facts = verify_attestation(read(SECP256K1_DOC), expected_pcrs=expected)

    assert facts.pcrs[16] == ZERO_PCR


def test_expected_pcr_mismatch_names_pcr() -> None:
    wrong = b"\xaa" * 48

    with pytest.raises(PcrMismatchError) as caught:
        verify_attestation(read(SECP256K1_DOC), expected_pcrs={2: wrong})

    message = str(caught.value)
    assert "PCR2" in message
    assert wrong.hex() in message
    assert EXPECTED[0].pcr2 in message


def test_expected_pcr_absent_from_document() -> None:
    with pytest.raises(PcrMismatchError, match="PCR20 expected .*, got absent"):
        verify_attestation(read(SECP256K1_DOC), expected_pcrs={20: ZERO_PCR})


# Key binding


def test_key_binding_matches_compressed_key() -> None:
    facts = verify_attestation(read(SECP256K1_DOC))
    assert facts.public_key is not None

    check_key_binding(facts, compressed_key(facts.public_key))
    check_key_binding(facts, "0x" + compressed_key(facts.public_key))


def test_key_binding_rejects_other_key() -> None:
    facts = verify_attestation(read(SECP256K1_DOC))
    other = coincurve.PrivateKey().public_key.format(compressed=True).hex()

    with pytest.raises(KeyBindingError, match="not the oracle's signing key"):
        check_key_binding(facts, other)


def test_key_binding_rejects_x25519_document() -> None:
    facts = verify_attestation(read(X25519_DOC))
    some_key = coincurve.PrivateKey().public_key.format(compressed=True).hex()

    with pytest.raises(KeyBindingError, match="32-byte"):
        check_key_binding(facts, some_key)


def test_key_binding_rejects_missing_key() -> None:
    facts = verify_attestation(read(SECP256K1_DOC))
    keyless = AttestationFacts(**{**facts.__dict__, "public_key": None})

    with pytest.raises(KeyBindingError, match="no public key"):
        check_key_binding(keyless, compressed_key(facts.public_key or b""))


@pytest.mark.parametrize(
    "key_hex",
    ["zz", "04" + "11" * 64, "02" + "11" * 31, "05" + "11" * 32, "02" + "ff" * 32],
    ids=["not-hex", "uncompressed", "short", "bad-prefix", "not-on-curve"],
)
def test_key_binding_rejects_malformed_oracle_key(key_hex: str) -> None:
    facts = verify_attestation(read(SECP256K1_DOC))

    with pytest.raises(InvalidInputError):
        check_key_binding(facts, key_hex)


# Expected PCR syntax


def test_parse_expected_pcrs() -> None:
    value = "ab" * 48

    parsed = parse_expected_pcrs([f"0={value}", f"16=0x{value}"])

    assert parsed == {0: bytes.fromhex(value), 16: bytes.fromhex(value)}


@pytest.mark.parametrize(
    "spec",
    ["0", "x=" + "00" * 48, "32=" + "00" * 48, "0=" + "00" * 47, "0=zz", "-1=" + "00" * 48],
)
def test_parse_expected_pcrs_rejects_bad_syntax(spec: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_expected_pcrs([spec])


@pytest.mark.parametrize(
    "spec",
    [
        "\u0660=" + "00" * 48,  # ARABIC-INDIC DIGIT ZERO, which str.isdigit() and int() accept
        "\u0661\u0666=" + "00" * 48,  # Arabic-Indic "16"
        "\uff10=" + "00" * 48,  # FULLWIDTH DIGIT ZERO
        "\u00b2=" + "00" * 48,  # SUPERSCRIPT TWO: isdigit() is true but int() raises
        "0=" + "00 " * 48,  # whitespace between bytes, which bytes.fromhex() skips
        "0=" + "\u0660" * 96,
    ],
)
def test_parse_expected_pcrs_rejects_non_ascii(spec: str) -> None:
    with pytest.raises(InvalidInputError, match="N=HEX"):
        parse_expected_pcrs([spec])


def test_parse_expected_pcrs_rejects_conflicting_values() -> None:
    with pytest.raises(InvalidInputError, match="PCR3"):
        parse_expected_pcrs(["3=" + "00" * 48, "3=" + "11" * 48])


# Loading from files, stdin and URLs


def test_load_document_from_file() -> None:
    assert load_document(str(DATA / SECP256K1_DOC)) == read(SECP256K1_DOC)


def test_load_document_decodes_hex_file(tmp_path: Path) -> None:
    path = tmp_path / "attestation.hex"
    path.write_text(read(SECP256K1_DOC).hex() + "\n")

    assert load_document(str(path)) == read(SECP256K1_DOC)


def test_load_document_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(read(SECP256K1_DOC))))

    assert load_document("-") == read(SECP256K1_DOC)


def test_load_document_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read attestation document"):
        load_document(str(tmp_path / "absent.bin"))


class AttestationHandler(BaseHTTPRequestHandler):
    """Serves the recorded secp256k1 document like Oyster's port-1301 server."""

    def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
        document = read(SECP256K1_DOC)
        routes = {"/attestation/raw": document, "/attestation/hex": document.hex().encode()}
        body = routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def attestation_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AttestationHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_load_document_from_raw_url(attestation_server: str) -> None:
    assert load_document(f"{attestation_server}/attestation/raw") == read(SECP256K1_DOC)


def test_load_document_from_hex_url(attestation_server: str) -> None:
    assert load_document(f"{attestation_server}/attestation/hex") == read(SECP256K1_DOC)


def test_load_document_http_error(attestation_server: str) -> None:
    with pytest.raises(UpstreamResponseError, match="HTTP 404") as caught:
        load_document(f"{attestation_server}/nothing-here")

    assert caught.value.upstream == "attestation"


def test_load_document_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(UpstreamUnavailableError) as caught:
        load_document(f"http://127.0.0.1:{port}/attestation/raw")

    assert caught.value.upstream == "attestation"


def test_load_document_silent_server_times_out() -> None:
    # The socket listens but never accepts, so no response ever arrives.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]

        with pytest.raises(UpstreamTimeoutError) as caught:
            load_document(f"http://127.0.0.1:{port}/attestation/raw", timeout_s=0.2)

    assert caught.value.upstream == "attestation"


# Command line


def test_cli_prints_facts_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_verify_command(str(DATA / SECP256K1_DOC), root="aws", max_age_s=None, expected_pcrs=[])

    captured = capsys.readouterr()
    assert code == 0
    assert json.loads(captured.out)["image_id"] == EXPECTED[0].image_id
    assert captured.err == ""


def test_cli_checks_pcrs_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    expected = EXPECTED[0]
    key = compressed_key(bytes.fromhex(expected.public_key))

    code = run_verify_command(
        str(DATA / SECP256K1_DOC),
        root="aws",
        max_age_s=None,
        expected_pcrs=[f"0={expected.pcr0}", f"16={expected.pcr16}"],
        public_key_hex=key,
    )

    assert code == 0
    assert json.loads(capsys.readouterr().out)["public_key"] == expected.public_key


def test_cli_reads_url(attestation_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{attestation_server}/attestation/raw"

    code = run_verify_command(url, root="aws", max_age_s=None, expected_pcrs=[])

    assert code == 0
    assert json.loads(capsys.readouterr().out)["timestamp_ms"] == EXPECTED[0].timestamp_ms


@pytest.mark.parametrize(
    "arguments",
    [
        {"root": "mock", "max_age_s": None, "expected_pcrs": []},
        {"root": "aws", "max_age_s": 60.0, "expected_pcrs": []},
        {"root": "aws", "max_age_s": None, "expected_pcrs": ["0=" + "00" * 48]},
        {"root": "aws", "max_age_s": None, "expected_pcrs": [], "public_key_hex": "02" + "79be667e" * 8},
    ],
    ids=["wrong-root", "too-old", "pcr-mismatch", "other-key"],
)
def test_cli_verification_failure_exits_1(arguments: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_verify_command(str(DATA / SECP256K1_DOC), **arguments)

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.startswith("attestation verification failed: ")
    assert captured.err.count("\n") == 1


def test_cli_garbage_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\xff\x00garbage")

    code = run_verify_command(str(path), root="aws", max_age_s=None, expected_pcrs=[])

    assert code == 1
    assert "not valid CBOR" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "arguments"),
    [
        (str(DATA / SECP256K1_DOC), {"expected_pcrs": ["0:abcd"]}),
        ("/nonexistent/attestation.bin", {"expected_pcrs": []}),
        (str(DATA / SECP256K1_DOC), {"expected_pcrs": [], "public_key_hex": "not-a-key"}),
    ],
    ids=["bad-pcr-syntax", "unreadable-file", "bad-public-key"],
)
def test_cli_unusable_input_exits_2(source: str, arguments: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_verify_command(source, root="aws", max_age_s=None, **arguments)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith("attestation input unusable: ")
    assert captured.err.count("\n") == 1
