"""The oracle's one exception tree.

Every error the oracle raises on purpose derives from ``OracleError``. Library
errors (httpx, ollama, coincurve, cbor2, cryptography) are converted at the
module boundary that calls the library, with the original kept as ``__cause__``.
Messages name the bad value and what is allowed, and never contain a secret.
"""

from __future__ import annotations


def shorten(value: object, limit: int = 80) -> str:
    """Return ``value`` as text cut to ``limit`` characters, for quoting in a message."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OracleError(Exception):
    """Base class for every error the oracle raises on purpose."""


# Configuration and start-up


class ConfigError(OracleError):
    """A setting is missing or invalid; the service refuses to start."""


class KeyFileError(ConfigError):
    """The signing key file is missing, unreadable or not a valid secp256k1 key."""


# Caller input


class InvalidInputError(OracleError):
    """The caller's input is invalid, so the API returns 400 or 422."""


class InvalidAddressError(InvalidInputError):
    """The wallet address is not 0x + 40 hex digits, or fails its EIP-55 checksum."""


# Upstream services


class UpstreamError(OracleError):
    """An upstream service failed, so no score can be signed.

    ``upstream`` names the service (``explorer``, ``ollama``) and ``reason`` is a
    short machine-readable word; the message is for people.
    """

    http_status = 502
    reason = "bad_response"

    def __init__(self, message: str, *, upstream: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.upstream = upstream
        if reason is not None:
            self.reason = reason


class UpstreamTimeoutError(UpstreamError):
    """The upstream did not respond within its timeout."""

    http_status = 504
    reason = "timeout"


class UpstreamUnavailableError(UpstreamError):
    """The upstream refused the connection or kept rate-limiting after all retries."""

    http_status = 503
    reason = "unavailable"


class UpstreamResponseError(UpstreamError):
    """The upstream responded, but with an error body or with data we cannot use."""

    http_status = 502
    reason = "bad_response"


class BusyError(OracleError):
    """No model slot became free within the request's deadline; retry later."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# Language model


class ModelError(OracleError):
    """The language model could not give a usable assessment.

    The oracle never fails a request for this: it falls back to the rubric score
    and reports ``reason`` in the metadata.
    """

    reason = "model_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


# Signatures


class VerificationError(OracleError):
    """A signed score does not verify against the given public key."""


class UnusableInputError(OracleError):
    """A file or answer handed to ``verify`` cannot be read as a signed score."""


# Attestation documents


class AttestationError(OracleError):
    """An attestation document failed verification."""


class NotCborError(AttestationError):
    """The document is not valid CBOR."""


class NotCoseSign1Error(AttestationError):
    """The CBOR value is not a COSE_Sign1 structure with an attestation payload."""


class BadSignatureError(AttestationError):
    """The COSE signature does not verify with the leaf certificate's key."""


class BrokenChainError(AttestationError):
    """A certificate in the chain is not issued by the next one."""


class UntrustedRootError(AttestationError):
    """The chain ends at a key that is not the trusted root key."""


class CertificateNotValidError(AttestationError):
    """A certificate is not valid at the document's timestamp."""


class DocumentTooOldError(AttestationError):
    """The document is older than the allowed maximum age."""


class PcrMismatchError(AttestationError):
    """A PCR differs from the value the caller expects."""


class KeyBindingError(AttestationError):
    """The attested public key is not the key that signs the oracle's scores."""


# Deployment


class DeployError(OracleError):
    """A deployment step failed. The message names the step and how to resume."""
