"""The service as an operator sees it: fast start, restart keeps state, payload and rate limits, token expiry."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from cityos.testing import APP_CLIENT_ID, CityosProcess, login, run_cityos

ROOT = Path(__file__).resolve().parents[2]

NGSI = "/ngsi-ld/v1"


def _count(server: CityosProcess, entity_type: str) -> int:
    answer = httpx.get(server.base_url + NGSI + "/entities", params={"type": entity_type, "limit": 0, "count": "true"})
    return int(answer.headers["NGSILD-Results-Count"])


def test_restart_keeps_entities_consents_keys_and_refresh_tokens(new_db_url, tmp_path, data_dir):
    with run_cityos(tmp_path, db_url=new_db_url, data_dir=data_dir) as server:
        tokens = login(server, "ube-resident-1")
        me = {"Authorization": f"Bearer {tokens['access_token']}"}
        httpx.post(server.base_url + "/cityos/v1/consents", json={"category": "health_activity", "purpose": "health_promotion", "recipient": "city"},
                   headers=me)
        event_id = f"urn:ngsi-ld:HealthPointEvent:{uuid.uuid4().hex}"
        event = {"id": event_id, "type": "HealthPointEvent", "steps": {"type": "Property", "value": 8000}}
        assert httpx.post(server.base_url + NGSI + "/entities", json=event, headers=me).status_code == 201
        shelters = _count(server, "EvacuationShelter")
        cursor = httpx.get(server.base_url + "/cityos/v1/changes", headers=me, params={"limit": 1000}).json()["cursor"]
        port = server.port

        server.restart()

        assert server.port == port
        assert httpx.get(server.base_url + NGSI + f"/entities/{event_id}", headers=me).json()["steps"]["value"] == 8000  # old token still valid
        assert _count(server, "EvacuationShelter") == shelters  # seeding did not duplicate
        assert [g["category"] for g in httpx.get(server.base_url + "/cityos/v1/consents", headers=me).json()] == ["health_activity"]
        refreshed = httpx.post(server.base_url + "/token",
                               data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": APP_CLIENT_ID})
        assert refreshed.status_code == 200
        assert httpx.get(server.base_url + "/cityos/v1/changes", headers=me, params={"after": cursor}).json()["changes"] == []


def _cold_start(db: Path, data_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cityos", "--port", "0", "--db", f"sqlite:///{db}", "--data-dir", str(data_dir), "--region", "352021"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("cityos ready http://127.0.0.1:")
        assert httpx.get(line.split()[-1] + "/.well-known/openid-configuration").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.stdout.read() == ""  # exactly one line on stdout


def test_starts_and_prints_one_ready_line(tmp_path, data_dir):
    # How fast it starts is measured, not asserted: see docs/cityos.md "Measured".
    _cold_start(tmp_path / "c.sqlite", data_dir)


def test_bad_database_url_fails_clearly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cityos", "--port", "0", "--db", "postgresql://nobody:x@127.0.0.1:1/none"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "cannot start" in result.stderr and "ready" not in result.stdout


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory, data_dir):
    args = ["--max-body-bytes", "4000", "--rate-limit", "2", "--rate-burst", "10"]
    with run_cityos(tmp_path_factory.mktemp("strict"), data_dir=data_dir, access_token_ttl=3, extra_args=args) as server:
        yield server


def test_payload_limit_gives_413(strict_server):
    tokens = login(strict_server, "ube-city-1")
    big = {"id": "urn:ngsi-ld:Alert:big", "type": "Alert", "text": {"type": "Property", "value": "x" * 5000}}
    answer = httpx.post(strict_server.base_url + NGSI + "/entities", json=big, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert answer.status_code == 413 and answer.json()["status"] == 413
    chunked = httpx.post(strict_server.base_url + NGSI + "/entityOperations/upsert", content=iter([b"[" + b" " * 3000, b" " * 3000 + b"]"]),
                         headers={"Authorization": f"Bearer {tokens['access_token']}", "Content-Type": "application/json"})
    assert chunked.status_code == 413  # no Content-Length: counted while reading


def test_access_tokens_expire(strict_server):
    tokens = login(strict_server, "ube-resident-2")
    me = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(strict_server.base_url + "/userinfo", headers=me).status_code == 200
    time.sleep(4.1)
    expired = httpx.get(strict_server.base_url + "/cityos/v1/consents", headers=me)
    assert expired.status_code == 401 and expired.json()["type"] == "urn:cityos:problem:unauthorized"
    assert "invalid_token" in expired.headers["www-authenticate"]


def test_rate_limit_gives_429_with_retry_after(strict_server):
    url = strict_server.base_url + "/cityos/v1/consent-categories"
    with httpx.Client() as client:
        statuses = [client.get(url) for _ in range(25)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, "25 quick requests with a burst of 10 at 2/s must be throttled"
    assert int(limited[0].headers["Retry-After"]) >= 1 and limited[0].json()["status"] == 429
    time.sleep(1.1)
    assert httpx.get(url).status_code == 200  # the bucket refills
