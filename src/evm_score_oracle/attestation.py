"""Offline verification of AWS Nitro attestation documents from an Oyster enclave.

deploy.sh registers an enclave on chain only after this module has checked its
attestation document. The checks cover the COSE_Sign1 signature (ES384) with
the leaf certificate and the certificate chain up to a pinned root key at the
document's own time. On request they also cover the document's age, its PCRs
and whether the attested secp256k1 key is the key that signs the oracle's
scores. Nothing here trusts the network, because a URL only supplies the bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cbor2
import coincurve
import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import (
    AttestationError,
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
    UpstreamError,
    UpstreamResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

logger = logging.getLogger(__name__)

# Trusted root keys: uncompressed P-384 points without the 0x04 prefix.
# "aws" is the AWS Nitro Enclaves root (CN=aws.nitro-enclaves, certificate
# SHA-256 fingerprint 641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b).
# "mock" is the root of Oyster's local development images and `oyster-cvm simulate`;
# anyone can sign with it, so it must never be the default.
ROOT_KEYS: Mapping[str, bytes] = {
    "aws": bytes.fromhex(
        "fc0254eba608c1f36870e29ada90be46383292736e894bfff672d989444b5051"
        "e534a4b1f6dbe3c0bc581a32b7b176070ede12d69a3fea211b66e752cf7dd1dd"
        "095f6f1370f4170843d9dc100121e4cf63012809664487c9796284304dc53ff4"
    ),
    "mock": bytes.fromhex(
        "6c79411ebaae7489a4e8355545c0346784b31df5d08cb1f7c0097836a82f6724"
        "0f2a7201862880a1d09a0bb326637188fbbafab47a10abe3630fcf8c18d35d96"
        "532184985e582c0dce3dace8441f37b9cc9211dff935baae69e4872cc3494410"
    ),
}

COSE_SIGN1_TAG = 18
COSE_ALG_ES384 = -35
PCR_LENGTH = 48
MAX_PCR_INDEX = 31
# ASCII-only classes, because str.isdigit(), int() and \d also accept digits of
# other scripts, such as U+0660 ARABIC-INDIC DIGIT ZERO, which must not select PCR0.
_PCR_INDEX_PATTERN = re.compile(r"0*[0-9]{1,2}")
_PCR_HEX_PATTERN = re.compile(r"(?:[0-9a-fA-F]{2})+")
IMAGE_ID_PCR_FLAGS = 0x0001_0007  # bit set of the PCRs hashed into the image id: 0, 1, 2, 16
IMAGE_ID_PCRS = (0, 1, 2, 16)
SECP256K1_XY_LENGTH = 64

# Real documents are about 5 KB, so the cap only stops a bad source from filling memory.
MAX_DOCUMENT_BYTES = 1 << 20


@dataclass(frozen=True)
class AttestationFacts:
    """Facts from an attestation document whose signature and chain verified."""

    pcrs: dict[int, bytes]
    """PCR index to 48-byte value, with PCR16 as 48 zero bytes when the document has none."""
    image_id: str
    """Hex SHA-256 over the PCR bit set 0x00010007 and PCRs 0, 1, 2 and 16, as Oyster computes it."""
    public_key: bytes | None
    """Attested key: 64-byte secp256k1 X||Y on port 1301, 32-byte x25519 on port 1300."""
    user_data: bytes | None
    nonce: bytes | None
    timestamp_ms: int
    """Time the Nitro hypervisor signed the document, in milliseconds since the Unix epoch."""
    module_id: str
    root: str
    """Name of the trusted root the chain ended at: ``aws`` or ``mock``."""

    def as_dict(self) -> dict[str, Any]:
        """Convert to a JSON-ready dict with byte strings as lower-case hex."""
        return {
            "module_id": self.module_id,
            "timestamp_ms": self.timestamp_ms,
            "root": self.root,
            "image_id": self.image_id,
            "pcrs": {str(index): value.hex() for index, value in sorted(self.pcrs.items())},
            "public_key": _hex_or_none(self.public_key),
            "user_data": _hex_or_none(self.user_data),
            "nonce": _hex_or_none(self.nonce),
        }


@dataclass(frozen=True)
class _CoseSign1:
    protected: bytes
    payload: bytes
    signature: bytes


@dataclass(frozen=True)
class _Document:
    module_id: str
    timestamp_ms: int
    pcrs: dict[int, bytes]
    certificate: bytes
    cabundle: list[bytes]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None


# Verification


def verify_attestation(
    document: bytes,
    *,
    root: str = "aws",
    max_age_s: float | None = None,
    expected_pcrs: Mapping[int, bytes] | None = None,
    now_ms: int | None = None,
) -> AttestationFacts:
    """Verify an attestation document and return its facts.

    The checks run in this order: CBOR and COSE_Sign1 structure, certificate
    chain up to the ``root`` key at the document's timestamp, ES384 signature.
    Then, when requested, the age against ``now_ms`` (default now) and the
    PCRs in ``expected_pcrs``. Raises the ``AttestationError`` subclass of the
    first failed check, or ``InvalidInputError`` for an unknown root or an
    invalid maximum age.
    """
    _root_key(root)  # reject an unknown root before any parsing
    _check_max_age_argument(max_age_s)

    cose = _parse_cose_sign1(document)
    parsed = _parse_document(cose.payload)
    leaf = verify_certificate_chain(
        parsed.certificate, parsed.cabundle, root=root, at_ms=parsed.timestamp_ms
    )
    _verify_cose_signature(cose, leaf)

    facts = _facts_from(parsed, root)
    if max_age_s is not None:
        _check_age(facts.timestamp_ms, max_age_s, now_ms if now_ms is not None else _current_ms())
    if expected_pcrs:
        check_pcrs(facts, expected_pcrs)

    logger.debug("attestation verified: root=%s image_id=%s", root, facts.image_id)
    return facts


def verify_certificate_chain(
    certificate: bytes, cabundle: Sequence[bytes], *, root: str = "aws", at_ms: int
) -> x509.Certificate:
    """Verify leaf ``certificate`` up to the ``root`` key at ``at_ms`` and return the leaf.

    The chain is the leaf, then ``cabundle`` reversed (the bundle lists the root
    first). Each certificate must be valid at ``at_ms`` (milliseconds since the
    epoch) and directly issued by the next one, which must be a CA. The last
    certificate's key must be the trusted root key.
    """
    root_key = _root_key(root)
    chain = [_load_certificate(der, index) for index, der in enumerate([certificate, *reversed(cabundle)])]

    for index, cert in enumerate(chain):
        _check_validity(cert, index, at_ms)
    for index in range(len(chain) - 1):
        _check_issued_by(chain, index)
    _check_root_key(chain[-1], len(chain) - 1, root, root_key)

    return chain[0]


def check_pcrs(facts: AttestationFacts, expected_pcrs: Mapping[int, bytes]) -> None:
    """Raise PcrMismatchError naming every PCR that differs from ``expected_pcrs``."""
    mismatches = []
    for index, expected in sorted(expected_pcrs.items()):
        actual = facts.pcrs.get(index)
        if actual != expected:
            got = actual.hex() if actual is not None else "absent"
            mismatches.append(f"PCR{index} expected {expected.hex()}, got {got}")

    if mismatches:
        raise PcrMismatchError(
            "attestation PCRs differ from the expected values: " + "; ".join(mismatches)
            + ". Check that the enclave runs the image you built, or update the expected PCRs"
        )


def check_key_binding(facts: AttestationFacts, oracle_public_key_hex: str) -> None:
    """Check that the attested key is the oracle's signing key, else raise KeyBindingError.

    ``oracle_public_key_hex`` is the 33-byte compressed secp256k1 key in hex that
    the oracle's GET /public-key returns. The attested key must be the 64-byte
    X||Y form that the port-1301 attestation server signs.
    """
    oracle_xy = _oracle_key_xy(oracle_public_key_hex)
    attested = facts.public_key

    if attested is None or len(attested) != SECP256K1_XY_LENGTH:
        size = "no public key" if attested is None else f"a {len(attested)}-byte public key"
        raise KeyBindingError(
            f"the attestation document contains {size}, expected the 64-byte secp256k1 X||Y key. "
            "Fetch the document from the port-1301 attestation server, not port 1300 (x25519)"
        )
    if attested != oracle_xy:
        raise KeyBindingError(
            f"attested key {attested.hex()} is not the oracle's signing key {oracle_xy.hex()} "
            f"(compressed {oracle_public_key_hex}), so the oracle is not the attested enclave. "
            "Fetch both from the same enclave"
        )


def _root_key(root: str) -> bytes:
    key = ROOT_KEYS.get(root)
    if key is None:
        raise InvalidInputError(f"unknown attestation root {root!r}: use one of {', '.join(ROOT_KEYS)}")
    return key


def _check_max_age_argument(max_age_s: float | None) -> None:
    if max_age_s is None:
        return
    if not math.isfinite(max_age_s) or max_age_s < 0:
        raise InvalidInputError(f"invalid maximum age {max_age_s!r} s: use a finite number of seconds >= 0")


def _check_age(timestamp_ms: int, max_age_s: float, now_ms: int) -> None:
    age_ms = now_ms - timestamp_ms
    if age_ms > max_age_s * 1000:
        raise DocumentTooOldError(
            f"attestation document is {age_ms / 1000:.1f} s old (signed at {_format_ms(timestamp_ms)}, "
            f"now {_format_ms(now_ms)}), more than the allowed {max_age_s:g} s. Fetch a fresh document"
        )


def _current_ms() -> int:
    return time.time_ns() // 1_000_000


# COSE_Sign1 and payload parsing


def _parse_cose_sign1(document: bytes) -> _CoseSign1:
    value = _decode_cbor(document, "attestation document")

    if isinstance(value, cbor2.CBORTag):
        if value.tag != COSE_SIGN1_TAG:
            raise NotCoseSign1Error(
                f"attestation document has CBOR tag {value.tag}, "
                f"expected none or {COSE_SIGN1_TAG} (COSE_Sign1)"
            )
        value = value.value

    # cbor2 decodes the contents of a tag as immutable types (tuple, frozendict).
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise NotCoseSign1Error(
            f"attestation document is a CBOR {type(value).__name__}, expected a COSE_Sign1 array "
            "of 4 items (protected header, unprotected header, payload, signature)"
        )
    protected, unprotected, payload, signature = value
    if not all(isinstance(item, bytes) for item in (protected, payload, signature)) or not isinstance(
        unprotected, Mapping
    ):
        raise NotCoseSign1Error(
            "attestation document is not a COSE_Sign1 array: expected [bstr, map, bstr, bstr], "
            f"got [{', '.join(type(item).__name__ for item in value)}]"
        )

    _check_protected_header(protected)
    return _CoseSign1(protected=protected, payload=payload, signature=signature)


def _check_protected_header(protected: bytes) -> None:
    header = _decode_cbor(protected, "COSE protected header")
    algorithm = header.get(1) if isinstance(header, Mapping) else None
    if algorithm != COSE_ALG_ES384:
        raise NotCoseSign1Error(
            f"COSE protected header names algorithm {algorithm!r}, expected {COSE_ALG_ES384} (ES384), "
            "the only algorithm Nitro attestation documents use"
        )


def _decode_cbor(data: bytes, description: str) -> Any:
    if not data:
        raise NotCborError(f"{description} is empty, expected CBOR bytes")

    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as error:
        raise NotCborError(
            f"{description} is not valid CBOR ({error}). Check that the source serves the raw "
            "or hex attestation document"
        ) from error

    trailing = len(data) - stream.tell()
    if trailing:
        raise NotCborError(
            f"{description} has {trailing} bytes after its CBOR value, expected exactly one value"
        )
    return value


def _parse_document(payload: bytes) -> _Document:
    fields = _decode_cbor(payload, "attestation payload")
    if not isinstance(fields, dict):
        raise NotCoseSign1Error(f"attestation payload is a CBOR {type(fields).__name__}, expected a map")

    digest = _field(fields, "digest", str)
    if digest != "SHA384":
        raise NotCoseSign1Error(f"attestation payload digest is {digest!r}, expected 'SHA384'")

    return _Document(
        module_id=_field(fields, "module_id", str),
        timestamp_ms=_timestamp(fields),
        pcrs=_pcrs(fields),
        certificate=_field(fields, "certificate", bytes),
        cabundle=_cabundle(fields),
        public_key=_optional_bytes(fields, "public_key"),
        user_data=_optional_bytes(fields, "user_data"),
        nonce=_optional_bytes(fields, "nonce"),
    )


def _field(fields: dict[Any, Any], name: str, kind: type) -> Any:
    if name not in fields:
        raise NotCoseSign1Error(f"attestation payload has no {name!r} field")
    value = fields[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise NotCoseSign1Error(
            f"attestation payload field {name!r} is a {type(value).__name__}, expected {kind.__name__}"
        )
    return value


def _optional_bytes(fields: dict[Any, Any], name: str) -> bytes | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, bytes):
        raise NotCoseSign1Error(
            f"attestation payload field {name!r} is a {type(value).__name__}, expected bytes or null"
        )
    return value


def _timestamp(fields: dict[Any, Any]) -> int:
    timestamp = _field(fields, "timestamp", int)
    if timestamp <= 0:
        raise NotCoseSign1Error(
            f"attestation timestamp {timestamp} is invalid, expected a positive number of milliseconds"
        )
    return timestamp


def _pcrs(fields: dict[Any, Any]) -> dict[int, bytes]:
    pcrs = _field(fields, "pcrs", dict)
    if not pcrs:
        raise NotCoseSign1Error("attestation payload has an empty 'pcrs' map")

    for index, value in pcrs.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_PCR_INDEX:
            raise NotCoseSign1Error(
                f"attestation PCR index {index!r} is invalid, expected 0 to {MAX_PCR_INDEX}"
            )
        if not isinstance(value, bytes) or len(value) != PCR_LENGTH:
            size = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
            raise NotCoseSign1Error(
                f"attestation PCR{index} is {size}, expected {PCR_LENGTH} bytes (SHA-384)"
            )
    return dict(pcrs)


def _cabundle(fields: dict[Any, Any]) -> list[bytes]:
    cabundle = _field(fields, "cabundle", list)
    if not cabundle:
        raise NotCoseSign1Error(
            "attestation payload has an empty 'cabundle', expected at least the root certificate"
        )
    if not all(isinstance(der, bytes) for der in cabundle):
        raise NotCoseSign1Error("attestation 'cabundle' must list DER certificates as byte strings")
    return list(cabundle)


def _facts_from(parsed: _Document, root: str) -> AttestationFacts:
    pcrs = dict(sorted(parsed.pcrs.items()))
    pcrs.setdefault(16, bytes(PCR_LENGTH))

    return AttestationFacts(
        pcrs=pcrs,
        image_id=compute_image_id(pcrs),
        public_key=parsed.public_key,
        user_data=parsed.user_data,
        nonce=parsed.nonce,
        timestamp_ms=parsed.timestamp_ms,
        module_id=parsed.module_id,
        root=root,
    )


def compute_image_id(pcrs: Mapping[int, bytes]) -> str:
    """Compute Oyster's image id: SHA-256 of be_u32(0x00010007) || PCR0 || PCR1 || PCR2 || PCR16.

    A missing PCR16 counts as 48 zero bytes, as in documents from base images
    that do not measure the compose file.
    """
    digest = hashlib.sha256(IMAGE_ID_PCR_FLAGS.to_bytes(4, "big"))
    for index in IMAGE_ID_PCRS:
        digest.update(pcrs.get(index, bytes(PCR_LENGTH)))
    return digest.hexdigest()


# Certificate chain


def _load_certificate(der: bytes, index: int) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise BrokenChainError(
            f"certificate {index} of the chain (0 is the leaf) is not a valid DER X.509 "
            f"certificate: {error}"
        ) from error


def _describe(cert: x509.Certificate, index: int) -> str:
    return f"certificate {index} of the chain ({cert.subject.rfc4514_string()})"


def _check_validity(cert: x509.Certificate, index: int, at_ms: int) -> None:
    at = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc

    if not not_before <= at <= not_after:
        raise CertificateNotValidError(
            f"{_describe(cert, index)} is valid from {not_before.isoformat()} to {not_after.isoformat()}, "
            f"but the document time is {_format_ms(at_ms)}. The document was not signed while "
            "its chain was valid, so it cannot be trusted"
        )


def _check_issued_by(chain: Sequence[x509.Certificate], index: int) -> None:
    cert, issuer = chain[index], chain[index + 1]
    subject_text, issuer_text = _describe(cert, index), _describe(issuer, index + 1)

    if cert.issuer != issuer.subject:
        raise BrokenChainError(
            f"{subject_text} names issuer {cert.issuer.rfc4514_string()}, "
            f"but the next certificate is {issuer.subject.rfc4514_string()}"
        )
    _check_is_ca(issuer, index + 1, cas_below=index)

    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature as error:
        raise BrokenChainError(
            f"the signature of {subject_text} does not verify with the key of {issuer_text}"
        ) from error
    except (ValueError, TypeError) as error:
        raise BrokenChainError(f"cannot check {subject_text} against {issuer_text}: {error}") from error


def _check_is_ca(issuer: x509.Certificate, index: int, *, cas_below: int) -> None:
    # cas_below counts the CA certificates between this issuer and the leaf, which
    # RFC 5280 path length constraints limit.
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as error:
        raise BrokenChainError(
            f"{_describe(issuer, index)} has no basic constraints, so it is not a CA"
        ) from error

    if not constraints.ca:
        raise BrokenChainError(f"{_describe(issuer, index)} issues a certificate but is not a CA")
    if constraints.path_length is not None and cas_below > constraints.path_length:
        raise BrokenChainError(
            f"{_describe(issuer, index)} allows {constraints.path_length} CA certificates below it, "
            f"the chain has {cas_below}"
        )


def _check_root_key(cert: x509.Certificate, index: int, root: str, root_key: bytes) -> None:
    public_key = cert.public_key()
    point = b""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)[1:]

    if point != root_key:
        got = point.hex() if point else f"a {type(public_key).__name__}"
        raise UntrustedRootError(
            f"the chain ends at {_describe(cert, index)} with key {got}, "
            f"not the trusted {root!r} root key. Use root 'aws' for real enclaves "
            "and 'mock' only for local development images"
        )


# COSE signature


def _verify_cose_signature(cose: _CoseSign1, leaf: x509.Certificate) -> None:
    leaf_key = leaf.public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or not isinstance(leaf_key.curve, ec.SECP384R1):
        raise BadSignatureError(
            f"the leaf certificate key is {_key_name(leaf_key)}, expected a P-384 key for ES384"
        )
    if len(cose.signature) != 96:
        raise BadSignatureError(f"COSE signature is {len(cose.signature)} bytes, expected 96 (ES384 r||s)")

    # RFC 9052 section 4.4: the signed bytes are the Sig_structure with an empty external_aad.
    signed = cbor2.dumps(["Signature1", cose.protected, b"", cose.payload])
    r = int.from_bytes(cose.signature[:48], "big")
    s = int.from_bytes(cose.signature[48:], "big")

    try:
        leaf_key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as error:
        raise BadSignatureError(
            f"the COSE signature does not verify with the key of the leaf certificate "
            f"({leaf.subject.rfc4514_string()}): the document was altered after signing"
        ) from error


def _key_name(key: object) -> str:
    curve = getattr(key, "curve", None)
    return f"{type(key).__name__} on {curve.name}" if curve is not None else type(key).__name__


# Key binding


def _oracle_key_xy(oracle_public_key_hex: str) -> bytes:
    text = oracle_public_key_hex.strip().removeprefix("0x")
    try:
        compressed = bytes.fromhex(text)
    except ValueError as error:
        raise InvalidInputError(
            f"oracle public key {oracle_public_key_hex!r} is not hex. "
            "Pass the public_key value that GET /public-key returns"
        ) from error
    if len(compressed) != 33 or compressed[0] not in (2, 3):
        raise InvalidInputError(
            f"oracle public key is {len(compressed)} bytes starting {compressed[:1].hex() or 'empty'}, "
            "expected a 33-byte compressed secp256k1 key starting 02 or 03, as GET /public-key returns"
        )

    try:
        return coincurve.PublicKey(compressed).format(compressed=False)[1:]
    except ValueError as error:
        raise InvalidInputError(
            f"oracle public key {text} is not a point on secp256k1. "
            "Pass the public_key value that GET /public-key returns"
        ) from error


# Loading


def load_document(source: str, *, timeout_s: float = 10.0) -> bytes:
    """Read an attestation document from a file path, ``-`` (stdin) or an http(s) URL.

    Hex text, as Oyster's /attestation/hex serves, is decoded to bytes. Raises
    InvalidInputError for an unreadable file and an UpstreamError subclass with
    ``upstream="attestation"`` when the URL fails.
    """
    if source.startswith(("http://", "https://")):
        data = _fetch(source, timeout_s)
    elif source == "-":
        data = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
    else:
        data = _read_file(source)

    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInputError(
            f"attestation document from {source} is larger than {MAX_DOCUMENT_BYTES} bytes: "
            "check that the source is an attestation document"
        )
    return _decode_hex_text(data)


def _read_file(path: str) -> bytes:
    try:
        with Path(path).open("rb") as file:
            return file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise InvalidInputError(
            f"cannot read attestation document {path}: {error.strerror or error}"
        ) from error


def _decode_hex_text(data: bytes) -> bytes:
    # A COSE_Sign1 array starts with byte 0x84 or tag byte 0xd2, never with an
    # ASCII hex digit, so hex text cannot be mistaken for raw CBOR.
    text = data.strip()
    if not text or not all(chr(byte) in "0123456789abcdefABCDEF" for byte in text):
        return data
    if len(text) % 2:
        return data
    return bytes.fromhex(text.decode("ascii"))


def _fetch(url: str, timeout_s: float) -> bytes:
    started = time.monotonic()
    try:
        with httpx.stream("GET", url, timeout=timeout_s) as response:
            body = _read_capped(response)
    except httpx.TimeoutException as error:
        raise UpstreamTimeoutError(
            f"attestation server {url} timed out after {timeout_s:g} s. Check that the enclave is running",
            upstream="attestation",
        ) from error
    except httpx.TransportError as error:
        raise UpstreamUnavailableError(
            f"cannot reach attestation server {url} ({error}). "
            "Check the address and that port 1300 or 1301 is open",
            upstream="attestation",
        ) from error

    elapsed_ms = (time.monotonic() - started) * 1000
    logger.info("GET %s -> %d (%d bytes, %.0f ms)", url, response.status_code, len(body), elapsed_ms)
    if response.status_code != 200:
        raise UpstreamResponseError(
            f"attestation server {url} returned HTTP {response.status_code}, expected 200 "
            "with the document. Use the /attestation/raw or /attestation/hex path",
            upstream="attestation",
        )
    return body


def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_DOCUMENT_BYTES:
            break
    return bytes(body)


# Command line


def run_verify_command(
    source: str,
    *,
    root: str,
    max_age_s: float | None,
    expected_pcrs: list[str],
    public_key_hex: str | None = None,
) -> int:
    """Run ``attestation verify``: print the facts as JSON and return the exit code.

    Returns 0 when every check passes, 1 when the document fails a check, and 2
    when the input is unusable: a bad ``N=HEX`` PCR, an unreadable file, an
    unreachable URL, an unknown root or a malformed public key. Errors go to
    stderr as one line.
    """
    try:
        pcrs = parse_expected_pcrs(expected_pcrs)
        document = load_document(source)
        facts = verify_attestation(document, root=root, max_age_s=max_age_s, expected_pcrs=pcrs)
        if public_key_hex is not None:
            check_key_binding(facts, public_key_hex)
    except AttestationError as error:
        print(f"attestation verification failed: {error}", file=sys.stderr)
        return 1
    except (InvalidInputError, UpstreamError) as error:
        print(f"attestation input unusable: {error}", file=sys.stderr)
        return 2

    print(json.dumps(facts.as_dict(), indent=2))
    return 0


def parse_expected_pcrs(specs: Sequence[str]) -> dict[int, bytes]:
    """Parse ``N=HEX`` strings into PCR index to 48-byte value; raise InvalidInputError on bad syntax."""
    pcrs: dict[int, bytes] = {}
    for spec in specs:
        index, value = _parse_pcr_spec(spec)
        if index in pcrs and pcrs[index] != value:
            raise InvalidInputError(
                f"PCR{index} is expected with two different values, pass --expect-pcr {index}=HEX once"
            )
        pcrs[index] = value
    return pcrs


def _parse_pcr_spec(spec: str) -> tuple[int, bytes]:
    usage = f"use N=HEX with N from 0 to {MAX_PCR_INDEX} and {PCR_LENGTH * 2} hex digits"
    index_text, separator, hex_text = spec.partition("=")
    index_text = index_text.strip(" \t")
    if not separator or not _PCR_INDEX_PATTERN.fullmatch(index_text):
        raise InvalidInputError(f"invalid expected PCR {spec!r}: {usage}")

    index = int(index_text)
    if index > MAX_PCR_INDEX:
        raise InvalidInputError(f"invalid expected PCR index {index}: {usage}")
    digits = hex_text.strip(" \t").removeprefix("0x")
    if not _PCR_HEX_PATTERN.fullmatch(digits):
        raise InvalidInputError(f"invalid expected PCR{index} value {hex_text!r}: {usage}")
    value = bytes.fromhex(digits)
    if len(value) != PCR_LENGTH:
        raise InvalidInputError(
            f"expected PCR{index} value is {len(value)} bytes, not {PCR_LENGTH}: {usage}"
        )
    return index, value


def _hex_or_none(value: bytes | None) -> str | None:
    return value.hex() if value is not None else None


def _format_ms(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)
    return f"{moment.isoformat(timespec='milliseconds')} ({timestamp_ms} ms)"
