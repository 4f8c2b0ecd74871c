"""Property-based API test: schemathesis drives every operation of /openapi.json against the real server.

Bounded: a few dozen examples per operation, well under a minute in all.
"""
from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance
from schemathesis.core.failures import FailureGroup

from cityos.testing import login, run_cityos

EXAMPLES = int(os.environ.get("CITYOS_FUZZ_EXAMPLES", "25"))  # per operation: about 20 operations, together well under a minute


@pytest.fixture(scope="module")
def api_server(tmp_path_factory, data_dir):
    with run_cityos(tmp_path_factory.mktemp("openapi"), data_dir=data_dir) as server:
        yield server


@pytest.fixture(scope="module")
def staff_headers(api_server) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {login(api_server, 'ube-city-1')['access_token']}"}
    # The first ride request imports the street network (seconds on a busy machine): not within a fuzz call's timeout.
    httpx.get(api_server.base_url + "/rides/v1/service", headers=headers, timeout=120).raise_for_status()
    return headers


def test_api_conforms_to_its_openapi(api_server, staff_headers):
    schema = schemathesis.openapi.from_url(api_server.base_url + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures: dict[str, str] = {}
    # The live event stream never ends by itself; tests/test_family_live.py exercises it.
    operations = [op for op in (result.ok() for result in schema.get_all_operations()) if op.path != "/cityos/v1/events"]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def exercise(case) -> None:
            case.call_and_validate(headers=staff_headers, checks=checks)

        try:
            exercise()
        except (AssertionError, FailureGroup) as exc:  # one report for all operations beats stopping at the first
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
