"""Fuzz the running oracle from its own OpenAPI schema with schemathesis.

Each operation gets up to FUZZ_EXAMPLES schema-valid and as many schema-invalid
requests; the two /score operations alone make more than 500. No answer may be a 500. A 502, 503 or 504 is allowed only
when it names the upstream that failed, because a well-formed address that the
replayed explorer has not recorded is an upstream failure, not a server bug.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance
from schemathesis.checks import not_a_server_error

from evm_score_oracle.signing import write_new_key

from support.processes import Oracle, start_replay
from support.upstreams import refused_port

FUZZ_EXAMPLES = 130
UPSTREAM_STATUSES = {502, 503, 504}


@pytest.fixture(scope="module")
def oracle_url(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    key_file = workdir / "ecdsa.sec"
    write_new_key(key_file)
    replay, replay_url = start_replay(workdir)
    env = {
        "EXPLORER_URL": replay_url + "/v2/api",
        "EXPLORER_SOURCES": "txlist",
        "OLLAMA_HOST": f"http://127.0.0.1:{refused_port()}",
    }
    oracle = Oracle(workdir, key_file, env).wait_until_up()
    yield oracle.url
    oracle.stop()
    replay.stop()
    assert "Traceback" not in oracle.log_text()


@pytest.fixture(scope="module")
def api_schema(oracle_url):
    return schemathesis.openapi.from_url(oracle_url + "/openapi.json")


def check_answer(case, response) -> None:
    if response.status_code in UPSTREAM_STATUSES:
        assert response.json()["upstream"], response.text
    else:
        case.validate_response(
            response,
            excluded_checks=[not_a_server_error, ignored_auth, positive_data_acceptance],
        )
    assert response.status_code != 500, response.text


def test_api_never_fails_on_input(api_schema, oracle_url):
    # Hypothesis drives schemathesis' strategies directly: the schemathesis
    # pytest plugin does not load under pytest 9.
    sent = []
    operations = [result.ok() for result in api_schema.get_all_operations()]

    for operation in operations:
        raw = operation.definition.raw
        takes_input = bool(raw.get("parameters") or raw.get("requestBody"))
        # Invalid input cannot be generated for an operation that takes none.
        modes = list(GenerationMode) if takes_input else [GenerationMode.POSITIVE]
        for mode in modes:

            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                response = case.call(base_url=oracle_url, timeout=30)
                sent.append(response.status_code)
                check_answer(case, response)

            fuzz()

    assert len(operations) == 4
    assert len(sent) >= 500
