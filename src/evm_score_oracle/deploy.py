"""Deploy the oracle to a Marlin Oyster CVM and register the enclave on Sui.

deploy.sh runs this module. It runs preflight checks, an optional image build
and push, and `oyster-cvm deploy`. Then it waits for the oracle's /health and,
for a bounded time, for its local Ollama. It verifies the enclave's attestation
document and the oracle's key binding, and finally sends the two Sui
transactions that store the PCRs and register the enclave. Every step that fails raises
DeployError with the command that resumes from there. The results, never a
secret, go to deployment.env.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from . import attestation
from .errors import AttestationError, DeployError, InvalidInputError, UpstreamError

logger = logging.getLogger(__name__)

ORACLE_REPOSITORY = "majus/evm-score-oracle"
PLACEHOLDER_DIGEST = "0" * 64
WALLET_KEY_ENV = "OYSTER_WALLET_KEY"
ORACLE_PORT = 3000
ATTESTATION_PORT = 1301  # Oyster's attestation server for the secp256k1 key
OLLAMA_POLL_ATTEMPTS = 30
OLLAMA_POLL_INTERVAL_S = 10.0

_WALLET_KEY_PATTERN = re.compile(r"[0-9a-fA-F]{64}")
_DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
_JOB_ID_PATTERN = re.compile(r'Job created with ID:\s*"?(0x[0-9a-fA-F]+)"?')
_IP_PATTERN = re.compile(r"(?:Enclave is ready! IP address|IP address obtained):\s*([0-9A-Za-z.:\-]+)")
_PCR_LINE_PATTERN = re.compile(r"PCR([0-9]+):\s*([0-9a-fA-F]+)")
_WHOLE_NUMBER_PATTERN = re.compile(r"[0-9]+")
_SUI_DIGEST_PATTERN = re.compile(r"Transaction Digest:\s*([1-9A-HJ-NP-Za-km-z]{32,44})")


@dataclass(frozen=True)
class Enclave:
    """A deployed Oyster job and the IP address of its enclave."""

    job_id: str
    ip: str


@dataclass
class DeploymentRecord:
    """Everything deployment.env records; contains no secret."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, **values: str) -> None:
        self.values.update({name.upper(): value for name, value in values.items()})

    def write(self, path: Path) -> None:
        lines = [f"{name}={value}" for name, value in self.values.items()]
        path.write_text("\n".join(lines) + "\n")


# Preflight


def read_wallet_key(key_file: Path | None, environ: Mapping[str, str]) -> str:
    """Return the Oyster wallet key from ``key_file`` or OYSTER_WALLET_KEY.

    The key must be 64 hex digits without 0x; one trailing newline from a file
    is dropped. Error messages never contain the key.
    """
    if key_file is not None:
        try:
            # A valid key is ASCII. Other bytes decode to U+FFFD and fail the
            # pattern below, so no decode error can echo a byte of the key.
            key = key_file.read_bytes().decode("ascii", errors="replace").removesuffix("\n")
        except OSError as error:
            raise DeployError(
                f"cannot read wallet key file {key_file}: {error.strerror or error}. "
                "Pass a readable file with --wallet-key-file"
            ) from error
        source = f"file {key_file}"
    elif environ.get(WALLET_KEY_ENV):
        key = environ[WALLET_KEY_ENV]
        source = f"${WALLET_KEY_ENV}"
    else:
        raise DeployError(f"missing wallet key: pass --wallet-key-file FILE or set {WALLET_KEY_ENV}")

    if not _WALLET_KEY_PATTERN.fullmatch(key):
        raise DeployError(
            f"invalid wallet key in {source} ({len(key)} characters): expected exactly 64 hex "
            "digits with no 0x prefix and no surrounding whitespace"
        )
    return key


def check_tools(names: Sequence[str]) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise DeployError(f"missing tools on PATH: {', '.join(missing)}. Install them and run again")


def read_compose_file(path: Path) -> str:
    """Return the compose file's text with its line endings untouched.

    Oyster measures the file's exact bytes into PCR16, so CRLF stays CRLF.
    """
    try:
        with path.open(encoding="utf-8", newline="") as compose:
            return compose.read()
    except OSError as error:
        raise DeployError(
            f"cannot read compose file {path}: {error.strerror or error}. "
            "Pass an existing file with --compose-file"
        ) from error
    except UnicodeDecodeError as error:
        raise DeployError(f"compose file {path} is not valid UTF-8 ({error}): fix its encoding") from error


def oracle_image(compose_text: str, repository: str = ORACLE_REPOSITORY) -> str:
    """Return the oracle's `repository@sha256:...` image reference from the compose text."""
    pattern = re.compile(rf"^\s*image:\s*({re.escape(repository)}@sha256:[0-9a-f]{{64}})\s*$", re.MULTILINE)
    found = pattern.findall(compose_text)
    if len(found) != 1:
        raise DeployError(
            f"expected one image line '{repository}@sha256:<64 hex digits>' in the compose file, "
            f"found {len(found)}: fix the evm-score-oracle service's image"
        )
    return found[0]


def check_image_digest(compose_text: str, repository: str = ORACLE_REPOSITORY) -> str:
    """Return the oracle's image reference, or raise DeployError for the placeholder digest."""
    image = oracle_image(compose_text, repository)
    if image.endswith(PLACEHOLDER_DIGEST):
        raise DeployError(
            f"the compose file still has the placeholder image {image}: build and push the image "
            "with --build --push REGISTRY, or put the pushed image's digest in docker-compose.yml"
        )
    return image


def rewrite_image_digest(compose_file: Path, digest: str, repository: str = ORACLE_REPOSITORY) -> str:
    """Replace the oracle image's digest in ``compose_file`` and return the new reference.

    Only the digest changes, so the rest of the file keeps its exact bytes
    (Oyster measures them into PCR16).
    """
    if not _DIGEST_PATTERN.fullmatch(digest):
        raise DeployError(f"invalid image digest {digest!r}: expected sha256: and 64 lower-case hex digits")

    text = read_compose_file(compose_file)
    old = oracle_image(text, repository)
    new = f"{repository}@{digest}"
    with compose_file.open("w", encoding="utf-8", newline="") as compose:
        compose.write(text.replace(old, new, 1))
    return new


# Optional build and push


def build_and_push(repository: str, context: Path, run: Callable[[list[str]], subprocess.CompletedProcess]) -> str:
    """Build the oracle image, push it to ``repository`` and return its `sha256:` digest."""
    if _docker_hub_name(repository) != ORACLE_REPOSITORY:
        raise DeployError(
            f"cannot push to {repository}: the compose file names the image {ORACLE_REPOSITORY}, "
            f"so push to {ORACLE_REPOSITORY} (or docker.io/{ORACLE_REPOSITORY})"
        )
    epoch = run(["git", "-C", str(context), "log", "-1", "--format=%ct"]).stdout.strip() or "0"
    reference = f"{repository}:{epoch}"

    progress(f"building {reference}")
    run(["docker", "build", "--build-arg", f"SOURCE_DATE_EPOCH={epoch}", "-t", reference, str(context)])
    progress(f"pushing {reference}")
    run(["docker", "push", reference])
    repo_digests = run(["docker", "inspect", "--format", "{{json .RepoDigests}}", reference]).stdout

    for entry in json.loads(repo_digests or "[]"):
        name, _, digest = entry.partition("@")
        if _docker_hub_name(name) == ORACLE_REPOSITORY and _DIGEST_PATTERN.fullmatch(digest):
            return digest
    raise DeployError(f"docker inspect {reference} shows no pushed digest ({repo_digests.strip()}): push again")


def _docker_hub_name(repository: str) -> str:
    for prefix in ("docker.io/", "index.docker.io/"):
        repository = repository.removeprefix(prefix)
    return repository


# Oyster


def oyster_deploy_command(args: argparse.Namespace, key_file: Path) -> list[str]:
    # NOTE: flags follow the oyster-cvm v5 README in marlinprotocol/oyster-monorepo.
    # That README lists --arch only for `simulate`; it is passed here because
    # Oyster's deploy also selects the enclave image by architecture.
    command = [
        "oyster-cvm", "deploy",
        "--wallet-private-key-file", str(key_file),
        "--duration-in-minutes", str(args.duration_minutes),
        "--arch", args.arch,
        "--docker-compose", str(args.compose_file),
    ]
    optional = {
        "--operator": args.operator,
        "--instance-type": args.instance_type,
        "--region": args.region,
        "--job-name": args.job_name,
        "--image-url": args.image_url,
    }
    for flag, value in optional.items():
        if value:
            command += [flag, value]
    return command


def parse_deploy_output(output: str) -> Enclave:
    """Read the job id and enclave IP from `oyster-cvm deploy` output."""
    job = _JOB_ID_PATTERN.search(output)
    ips = _IP_PATTERN.findall(output)
    if job is None or not ips:
        missing = " and ".join(
            name for name, found in (("'Job created with ID'", job), ("the enclave IP address", ips)) if not found
        )
        raise DeployError(
            f"cannot find {missing} in the oyster-cvm deploy output: if a job was created, "
            "look it up with `oyster-cvm list --wallet-address ADDRESS` and resume with "
            "--skip-deploy --job-id ID --ip IP"
        )
    try:
        ip = parse_ip_address(ips[-1])
    except ValueError as error:
        raise DeployError(
            f"oyster-cvm deploy printed the enclave address {ips[-1]!r}, which is not an IP address "
            f"({error}): find the job's IP with `oyster-cvm list --wallet-address ADDRESS` and resume "
            f"with --skip-deploy --job-id {job.group(1)} --ip IP"
        ) from error
    return Enclave(job_id=job.group(1), ip=ip)


def parse_ip_address(text: str) -> str:
    """Return ``text`` as a normalized IPv4 or IPv6 literal; raise ValueError otherwise.

    Host names are rejected so that no deploy step depends on a DNS lookup.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError as error:
        raise ValueError("expected an IPv4 or IPv6 address such as 203.0.113.7 or 2001:db8::7") from error
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise ValueError("expected an IPv4 or IPv6 address without a %zone suffix")
    return str(address)


def enclave_url(ip: str, port: int, path: str = "") -> str:
    """Build an http:// URL for ``ip``, with IPv6 addresses in brackets."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}{path}"


def deploy_enclave(args: argparse.Namespace, wallet_key: str) -> Enclave:
    """Run `oyster-cvm deploy` with the key in a private temporary file."""
    with tempfile.TemporaryDirectory(prefix="oyster-key-") as directory:
        key_file = Path(directory) / "wallet.key"
        key_file.touch(mode=0o600)
        key_file.write_text(wallet_key)  # no trailing newline: oyster-cvm reads the file as is
        command = oyster_deploy_command(args, key_file)

        progress("deploying the enclave with oyster-cvm (this can take many minutes)")
        output = _run_streaming(command, resume="run deploy.sh again; no job was recorded")

    enclave = parse_deploy_output(output)
    progress(f"job {enclave.job_id} is running at {enclave.ip}")
    return enclave


def _run_streaming(command: list[str], resume: str) -> str:
    """Run ``command``, echo its output lines as they arrive, and return all of it."""
    env = dict(os.environ, NO_COLOR="1")
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    except OSError as error:
        raise DeployError(f"cannot start {command[0]}: {error.strerror or error}. Install it and {resume}") from error

    lines = []
    for line in process.stdout or ():
        lines.append(line)
        print(f"  | {line.rstrip()}", file=sys.stderr)
    status = process.wait()

    if status != 0:
        raise DeployError(f"{' '.join(command[:2])} failed with exit status {status}: {resume}")
    return "".join(lines)


# Readiness


def wait_for_health(client: httpx.Client, url: str, attempts: int, interval_s: float) -> dict:
    """Poll ``url`` until it returns 200 with a JSON object, and return that object."""
    for attempt in range(1, attempts + 1):
        body = _get_health(client, url)
        if body is not None:
            return body
        progress(f"waiting for {url} ({attempt}/{attempts})")
        if attempt < attempts:
            time.sleep(interval_s)

    raise DeployError(
        f"{url} did not return 200 with a JSON object after {attempts} attempts: check the enclave "
        "with `oyster-cvm logs --ip IP`, then resume with --skip-deploy --job-id ID --ip IP"
    )


def wait_for_ollama(client: httpx.Client, url: str, attempts: int, interval_s: float) -> bool:
    """Poll ``url`` until its JSON reports "ollama": "connected"; return False on timeout."""
    for attempt in range(1, attempts + 1):
        body = _get_health(client, url)
        status = body.get("ollama") if body else None
        if status == "connected":
            progress(f"Ollama is connected ({attempt}/{attempts})")
            return True
        progress(f"waiting for Ollama: ollama={status!r} ({attempt}/{attempts})")
        if attempt < attempts:
            time.sleep(interval_s)

    logger.warning(
        "Ollama did not report connected after %d checks %.0f s apart; the service may still be "
        "loading the model. Check it by hand with: curl -s %s",
        attempts, interval_s, url,
    )
    return False


def _get_health(client: httpx.Client, url: str) -> dict | None:
    try:
        response = client.get(url)
    except httpx.HTTPError as error:
        logger.debug("GET %s failed: %s", url, error)
        return None
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# Attestation


def verify_enclave(
    client: httpx.Client, oracle_url: str, attestation_url: str, *, root: str, max_age_s: float | None
) -> tuple[bytes, attestation.AttestationFacts, str]:
    """Fetch and verify the attestation and check that it binds the oracle's key.

    Returns the raw document, its facts and the oracle's compressed public key.
    """
    progress(f"fetching the attestation document from {attestation_url}")
    try:
        document = attestation.load_document(attestation_url)
        facts = attestation.verify_attestation(document, root=root, max_age_s=max_age_s)
    except (AttestationError, UpstreamError, InvalidInputError) as error:
        raise DeployError(
            f"attestation check failed: {error}. Nothing was registered; resume with "
            "--skip-deploy --job-id ID --ip IP"
        ) from error

    public_key = _fetch_public_key(client, f"{oracle_url}/public-key")
    try:
        attestation.check_key_binding(facts, public_key)
    except (AttestationError, InvalidInputError) as error:
        raise DeployError(f"key binding check failed: {error}. Nothing was registered on Sui") from error

    progress(f"attestation verified: image id {facts.image_id}, oracle key {public_key}")
    return document, facts, public_key


def _fetch_public_key(client: httpx.Client, url: str) -> str:
    try:
        response = client.get(url)
        response.raise_for_status()
        key = response.json()["public_key"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
        raise DeployError(
            f"cannot read the oracle's public key from {url}: {error}. Resume with --skip-deploy --job-id ID --ip IP"
        ) from error
    if not isinstance(key, str):
        raise DeployError(f"{url} returned public_key {key!r}: expected a hex string")
    return key


def compare_oyster_verify(ip: str, facts: attestation.AttestationFacts, port: int) -> None:
    """Run `oyster-cvm verify` and check that its PCR lines match ``facts``."""
    command = ["oyster-cvm", "verify", "--enclave-ip", ip, "--attestation-port", str(port)]
    output = _run_streaming(command, resume="resume with --skip-deploy --job-id ID --ip IP, or drop --oyster-verify")

    reported = {int(index): value.lower() for index, value in _PCR_LINE_PATTERN.findall(output)}
    if not reported:
        raise DeployError("oyster-cvm verify printed no PCR lines: run it by hand to see why")
    for index, value in sorted(reported.items()):
        ours = facts.pcrs.get(index)
        if ours is None or ours.hex() != value:
            raise DeployError(
                f"oyster-cvm verify reports PCR{index}={value}, but the document shows "
                f"{ours.hex() if ours else 'none'}: do not register this enclave"
            )


# Sui


def register_on_sui(args: argparse.Namespace, facts: attestation.AttestationFacts, document: bytes) -> dict[str, str]:
    """Store the enclave's PCRs with update_pcrs, then register it; return the tx digests.

    With --skip-pcr-update only the registration runs, for a restart of the
    same image whose PCRs are already stored.
    """
    digests = {}
    if not args.skip_pcr_update:
        progress("storing the PCRs on Sui (update_pcrs)")
        output = _run_streaming(update_pcrs_command(args, facts), resume="resume with --skip-deploy --job-id ID --ip IP")
        digests["update_pcrs_tx"] = _sui_digest(output)

    progress(f"registering the enclave on Sui ({args.register_function})")
    output = _run_streaming(
        register_command(args, document),
        resume="the PCRs are stored; resume with --skip-deploy --skip-pcr-update --job-id ID --ip IP",
    )
    digests["register_tx"] = _sui_digest(output)
    return digests


def update_pcrs_command(args: argparse.Namespace, facts: attestation.AttestationFacts) -> list[str]:
    indexes = (0, 1, 2, 16) if args.with_pcr16 else (0, 1, 2)
    pcrs = [f"0x{facts.pcrs[index].hex()}" for index in indexes]
    return [
        "sui", "client", "call",
        "--package", args.sui_package, "--module", "enclave", "--function", "update_pcrs",
        "--type-args", args.enclave_type,
        "--args", args.enclave_config, args.enclave_cap, *pcrs,
        "--gas-budget", str(args.gas_budget),
    ]


def register_command(args: argparse.Namespace, document: bytes) -> list[str]:
    # register_enclave takes a NitroAttestationDocument, which only
    # 0x2::nitro_attestation::load_nitro_attestation (with the clock 0x6) can
    # build, so this is a programmable transaction, not a plain `sui client call`.
    document_vector = "vector[" + ", ".join(f"{byte}u8" for byte in document) + "]"
    return [
        "sui", "client", "ptb",
        "--assign", "document", document_vector,
        "--move-call", "0x2::nitro_attestation::load_nitro_attestation", "document", "@0x6",
        "--assign", "attestation",
        "--move-call", f"{args.sui_package}::enclave::{args.register_function}<{args.enclave_type}>",
        f"@{args.enclave_config}", "attestation",
        "--gas-budget", str(args.gas_budget),
    ]


def _sui_digest(output: str) -> str:
    found = _SUI_DIGEST_PATTERN.search(output)
    if found is None:
        raise DeployError("cannot find 'Transaction Digest:' in the sui output: check the transaction by hand")
    return found.group(1)


# Command line


def progress(message: str) -> None:
    print(f"deploy: {message}", file=sys.stderr, flush=True)


def _whole_number(unit: str) -> Callable[[str], int]:
    """Build an argparse type that accepts ASCII digits for a whole number >= 1."""

    def parse(text: str) -> int:
        if not _WHOLE_NUMBER_PATTERN.fullmatch(text) or int(text) < 1:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a whole number of {unit} >= 1")
        return int(text)

    return parse


def _seconds(detail: str = "") -> Callable[[str], float]:
    """Build an argparse type for a finite number of seconds >= 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(
                f"invalid value {text!r}: expected a finite number of seconds >= 0{detail}"
            )
        return value

    return parse


def _ip_argument(text: str) -> str:
    try:
        return parse_ip_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: {error}") from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deploy.sh",
        description="Deploy the oracle to an Oyster CVM, verify its attestation and register it on Sui.",
    )
    wallet = parser.add_argument_group("Oyster deployment")
    wallet.add_argument("--wallet-key-file", type=Path,
                        help=f"file with the Oyster wallet key, 64 hex digits (default: ${WALLET_KEY_ENV})")
    wallet.add_argument("--compose-file", type=Path, default=Path("docker-compose.yml"),
                        help="compose file to deploy (default: docker-compose.yml)")
    wallet.add_argument("--arch", choices=("amd64", "arm64"), default="arm64",
                        help="enclave CPU architecture, matching --instance-type (default: arm64)")
    wallet.add_argument("--instance-type", help="instance type, for example r6g.large (default: oyster-cvm's)")
    wallet.add_argument("--region", help="deployment region (default: oyster-cvm's)")
    wallet.add_argument("--operator", help="operator address (required by oyster-cvm unless it has a default)")
    wallet.add_argument("--duration-minutes", type=_whole_number("minutes"), default=60,
                        help="how long the job runs, in whole minutes >= 1 (default: 60)")
    wallet.add_argument("--job-name", default="evm-score-oracle", help="job name (default: evm-score-oracle)")
    wallet.add_argument("--image-url", help="enclave base image URL (default: oyster-cvm's base image)")

    image = parser.add_argument_group("oracle image")
    image.add_argument("--build", action="store_true", help="build the oracle image before deploying")
    image.add_argument("--push", metavar="REGISTRY",
                       help="push the built image to REGISTRY (for example docker.io/majus/evm-score-oracle) "
                            "and write its digest into the compose file")

    resume = parser.add_argument_group("resuming")
    resume.add_argument("--skip-deploy", action="store_true", help="skip oyster-cvm deploy; needs --job-id and --ip")
    resume.add_argument("--job-id", help="job id of an earlier deployment")
    resume.add_argument("--ip", type=_ip_argument,
                        help="enclave IPv4 or IPv6 address of an earlier deployment (no host names)")
    resume.add_argument("--skip-pcr-update", action="store_true",
                        help="skip update_pcrs because the same PCRs are already stored")
    resume.add_argument("--skip-register", action="store_true", help="stop after the attestation check")

    checks = parser.add_argument_group("readiness and attestation")
    checks.add_argument("--oracle-url", help=f"oracle base URL (default: http://IP:{ORACLE_PORT})")
    checks.add_argument("--attestation-url", help=f"attestation URL (default: http://IP:{ATTESTATION_PORT}/attestation/raw)")
    checks.add_argument("--health-attempts", type=_whole_number("attempts"), default=60,
                        help="checks of /health before giving up, >= 1 (default: 60)")
    checks.add_argument("--health-interval", type=_seconds(), default=10.0,
                        help="seconds between /health checks, >= 0 (default: 10)")
    checks.add_argument("--ollama-attempts", type=_whole_number("attempts"), default=OLLAMA_POLL_ATTEMPTS,
                        help=f"checks for \"ollama\":\"connected\", >= 1 (default: {OLLAMA_POLL_ATTEMPTS})")
    checks.add_argument("--ollama-interval", type=_seconds(), default=OLLAMA_POLL_INTERVAL_S,
                        help=f"seconds between Ollama checks, >= 0 (default: {OLLAMA_POLL_INTERVAL_S:.0f})")
    checks.add_argument("--root", choices=sorted(attestation.ROOT_KEYS), default="aws",
                        help="trusted attestation root: aws, or mock for local simulation (default: aws)")
    checks.add_argument("--max-age", type=_seconds(", where 0 disables the freshness check"), default=300.0,
                        help="maximum attestation age in seconds, >= 0; exactly 0 disables the check (default: 300)")
    checks.add_argument("--oyster-verify", action="store_true",
                        help="also run `oyster-cvm verify` and compare its PCRs")

    sui = parser.add_argument_group("Sui registration")
    sui.add_argument("--sui-package", help="package id of the enclave Move package")
    sui.add_argument("--enclave-config", help="object id of the EnclaveConfig")
    sui.add_argument("--enclave-cap", help="object id of the Cap that may update the EnclaveConfig")
    sui.add_argument("--enclave-type", help="type argument T of EnclaveConfig<T>, for example 0xPKG::oracle::ORACLE")
    sui.add_argument("--register-function", default="register_enclave",
                     help="Move function that registers the enclave (default: register_enclave)")
    sui.add_argument("--with-pcr16", action="store_true",
                     help="pass PCR16 to update_pcrs too, for Move packages that store it")
    sui.add_argument("--gas-budget", type=_whole_number("MIST"), default=100_000_000,
                     help="gas budget for each transaction, in whole MIST >= 1 (default: 100000000)")

    parser.add_argument("--record", type=Path, default=Path("deployment.env"),
                        help="where to write the deployment record (default: deployment.env)")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    if args.skip_deploy and not (args.job_id and args.ip):
        raise DeployError("--skip-deploy needs --job-id ID and --ip IP of the running enclave")
    if bool(args.push) != args.build:
        raise DeployError("--build and --push REGISTRY go together: the digest comes from the pushed image")
    if not args.skip_register:
        missing = [flag for flag, value in (
            ("--sui-package", args.sui_package), ("--enclave-config", args.enclave_config),
            ("--enclave-type", args.enclave_type),
        ) if not value]
        if not args.skip_pcr_update and not args.enclave_cap:
            missing.append("--enclave-cap")
        if missing:
            raise DeployError(f"missing Sui arguments {', '.join(missing)}, or pass --skip-register")


def run(args: argparse.Namespace) -> int:
    """Run every deployment step in order and write the record."""
    check_arguments(args)
    record = DeploymentRecord()

    enclave = _deploy_step(args, record)
    oracle_url = (args.oracle_url or enclave_url(enclave.ip, ORACLE_PORT)).rstrip("/")
    attestation_url = args.attestation_url or enclave_url(enclave.ip, ATTESTATION_PORT, "/attestation/raw")

    with httpx.Client(timeout=10.0) as client:
        wait_for_health(client, f"{oracle_url}/health", args.health_attempts, args.health_interval)
        progress(f"{oracle_url}/health is up")
        ollama_ready = wait_for_ollama(client, f"{oracle_url}/health", args.ollama_attempts, args.ollama_interval)
        record.add(ollama_ready="yes" if ollama_ready else "no")

        # Only an explicit 0 disables the freshness check. The parser rejects
        # negative and non-finite values, and verify_attestation does too.
        max_age = None if args.max_age == 0 else args.max_age
        document, facts, public_key = verify_enclave(
            client, oracle_url, attestation_url, root=args.root, max_age_s=max_age
        )
    record.add(public_key=public_key, image_id=facts.image_id, attestation_timestamp_ms=str(facts.timestamp_ms))
    record.add(**{f"pcr{index}": value.hex() for index, value in sorted(facts.pcrs.items())})
    record.write(args.record)

    if args.oyster_verify:
        compare_oyster_verify(enclave.ip, facts, ATTESTATION_PORT)
    if not args.skip_register:
        record.add(**register_on_sui(args, facts, document))
        record.write(args.record)

    progress(f"done; the record is in {args.record}")
    return 0


def _deploy_step(args: argparse.Namespace, record: DeploymentRecord) -> Enclave:
    compose_text = read_compose_file(args.compose_file)
    needs_oyster = not args.skip_deploy or args.oyster_verify
    tools = []
    if needs_oyster:
        tools.append("oyster-cvm")
    if not args.skip_register:
        tools.append("sui")
    if args.build:
        tools += ["docker", "git"]
    check_tools(tools)

    if args.build:
        digest = build_and_push(args.push, args.compose_file.resolve().parent, _run_checked)
        rewrite_image_digest(args.compose_file, digest)
        compose_text = read_compose_file(args.compose_file)
    image = check_image_digest(compose_text)
    record.add(image=image, compose_file=str(args.compose_file))

    if args.skip_deploy:
        enclave = Enclave(job_id=args.job_id, ip=args.ip)
    else:
        enclave = deploy_enclave(args, read_wallet_key(args.wallet_key_file, os.environ))
    record.add(job_id=enclave.job_id, ip=enclave.ip)
    record.write(args.record)
    return enclave


def _run_checked(command: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or error
        raise DeployError(f"{' '.join(command[:2])} failed: {str(detail).strip()}") from error


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="deploy: %(levelname)s: %(message)s")
    # httpx and httpcore log every request at INFO, which would repeat each of
    # deploy's own progress lines.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except DeployError as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
