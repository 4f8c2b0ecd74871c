"""Several worker processes on one PostgreSQL: a change feed that commits cannot outrun, shared
public caches invalidated by NOTIFY, and conditional GETs answered without the database."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from cityos.entities import put_entity, validate_entity
from cityos.store import Store
from cityos.testing import CityosProcess, login, run_cityos

TENANT = "352021"
CHANGES = "/cityos/v1/changes"


@pytest.fixture(scope="module")
def pg_url(fresh_pg_database: Callable[[], str]) -> str:
    return fresh_pg_database()


@pytest.fixture(scope="module")
def workers(pg_url: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[CityosProcess]:
    with run_cityos(tmp_path_factory.mktemp("scale"), db_url=pg_url, data_dir=data_dir, extra_args=["--workers", "2", "--rate-limit", "0"]) as server:
        yield server


@pytest.fixture(scope="module")
def city(workers: CityosProcess) -> dict[str, str]:
    return {"Authorization": "Bearer " + login(workers, "ube-city-1")["access_token"]}


def _alert(entity_id: str, level: int = 3) -> dict:
    return {"id": entity_id, "type": "Alert", "level": {"type": "Property", "value": level},
            "headline": {"type": "Property", "value": "津波警報"}}


def _pull(base_url: str, cursor: str | None) -> tuple[list[dict], str]:
    """Everything the public alert feed hands out after ``cursor``, following hasMore."""
    seen: list[dict] = []
    for _ in range(1000):
        page = httpx.get(base_url + CHANGES, params={"type": "Alert", "limit": 50, **({"after": cursor} if cursor else {})}, timeout=30).json()
        seen += page["changes"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return seen, cursor
    raise AssertionError("the feed never ended")


def test_a_late_commit_is_held_back_then_delivered_once(workers: CityosProcess, pg_url: str, city: dict[str, str]) -> None:
    _, cursor = _pull(workers.base_url, None)
    store = Store(pg_url, pool_size=1)
    early, late = f"urn:ngsi-ld:Alert:early-{uuid.uuid4().hex}", f"urn:ngsi-ld:Alert:late-{uuid.uuid4().hex}"
    try:
        with store.write() as conn:  # begins first (smaller transaction id), commits last
            put_entity(conn, TENANT, validate_entity(_alert(early), TENANT, False), None, None, None)
            written = httpx.post(workers.base_url + "/ngsi-ld/v1/entityOperations/upsert", json=[_alert(late)], headers=city, timeout=30)
            assert written.status_code == 201
            during, cursor_during = _pull(workers.base_url, cursor)
            assert [c["id"] for c in during] == []  # the later commit waits for the earlier transaction
        after, _ = _pull(workers.base_url, cursor_during)
    finally:
        store.close()
    assert [c["id"] for c in after] == [early, late]


def test_concurrent_writers_on_two_workers_every_change_once(workers: CityosProcess, city: dict[str, str]) -> None:
    _, cursor = _pull(workers.base_url, None)
    written: list[str] = []
    lock = threading.Lock()
    seen: list[str] = []
    done = threading.Event()

    def writer(k: int) -> None:
        with httpx.Client(base_url=workers.base_url, headers=city, timeout=30) as client:
            for n in range(15):
                entity_id = f"urn:ngsi-ld:Alert:w{k}-{n}-{uuid.uuid4().hex[:8]}"
                assert client.post("/ngsi-ld/v1/entityOperations/upsert", json=[_alert(entity_id)]).status_code == 201
                with lock:
                    written.append(entity_id)

    def reader() -> None:
        nonlocal cursor
        while not done.is_set():
            changes, cursor = _pull(workers.base_url, cursor)
            seen.extend(c["id"] for c in changes)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    rest, _ = _pull(workers.base_url, cursor)
    seen += [c["id"] for c in rest]
    assert sorted(seen) == sorted(written)  # none skipped, none twice


def test_public_reads_are_cached_and_a_conditional_get_needs_no_database(workers: CityosProcess, pg_url: str, city: dict[str, str]) -> None:
    url = workers.base_url + "/ngsi-ld/v1/entities"
    params = {"type": "Alert", "limit": 1000}
    first = httpx.get(url, params=params, timeout=30)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=")
    for _ in range(6):  # let both workers keep it (the kernel picks the worker)
        assert httpx.get(url, params=params, timeout=30).headers["etag"] == etag
    answers: list[httpx.Response] = []
    with psycopg.connect(pg_url) as blocker:  # a query now would wait for this lock
        blocker.execute("LOCK TABLE entity IN ACCESS EXCLUSIVE MODE")
        for _ in range(6):
            try:  # a worker that asked the database would wait for the lock: give up on that one
                answers.append(httpx.get(url, params=params, headers={"If-None-Match": etag}, timeout=2))
            except httpx.ReadTimeout:
                continue
        blocker.rollback()
    assert answers and all(a.status_code == 304 and a.headers["etag"] == etag and a.content == b"" for a in answers)
    assert httpx.get(url, params=params, headers={"Authorization": city["Authorization"]}, timeout=30).headers.get("etag") is None

    new_id = f"urn:ngsi-ld:Alert:{uuid.uuid4().hex}"
    assert httpx.post(workers.base_url + "/ngsi-ld/v1/entityOperations/upsert", json=[_alert(new_id)], headers=city, timeout=30).status_code == 201
    for _ in range(200):  # every worker learns it by NOTIFY; bounded by the cache's short lifetime
        answer = httpx.get(url, params=params, headers={"If-None-Match": etag}, timeout=30)
        if answer.status_code == 200:
            break
    assert new_id in {e["id"] for e in answer.json()}
    assert answer.headers["etag"] != etag


def test_the_login_throttle_counts_for_all_workers_together(workers: CityosProcess) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cityos.testing import APP_CLIENT_ID, s256

    params = {"response_type": "code", "client_id": APP_CLIENT_ID, "redirect_uri": "http://127.0.0.1:50031/callback",
              "scope": "openid", "state": "s", "nonce": "n", "code_challenge": s256("v" * 50), "code_challenge_method": "S256"}

    def guess(i: int) -> int:
        with httpx.Client(timeout=60) as client:  # a connection each: the kernel spreads them over the workers
            return client.post(workers.base_url + "/authorize", data={**params, "username": "scale-target", "password": f"pw{i}"}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(guess, range(12)))
    assert statuses.count(401) == 5 and statuses.count(429) == 7



def test_a_session_ended_on_one_worker_ends_on_all(pg_url: str) -> None:
    """Each worker keeps verified tokens in memory; a session ended on one worker reaches the
    others by NOTIFY (two providers on one database stand for two workers), and one that lost
    its listener looks ended sessions up instead."""
    import time

    from cityos.caching import Generations, Notices
    from cityos.oidc import ACCESS_TOKEN_AUDIENCE, Keys, Provider
    from cityos.problems import Problem
    from cityos.store import SESSION_CHANNEL

    store = Store(pg_url, pool_size=2)
    keys = Keys(store)
    issuer = "http://127.0.0.1:1"
    here, there = Provider(store, keys, issuer, 600, 3600), Provider(store, keys, issuer, 600, 3600)
    generations = Generations()
    notices = Notices(store.conninfo, generations, {SESSION_CHANNEL: there.session_ended_elsewhere}, on_listening=there.reload_ended)
    there.hears_ended = lambda: generations.live
    try:
        now = int(time.time())
        family = uuid.uuid4().hex
        token = keys.sign({"iss": issuer, "sub": "s-1", "aud": ACCESS_TOKEN_AUDIENCE, "client_id": "mamori-app", "scope": "openid",
                           "iat": now, "exp": now + 600, "jti": "j", "sid": family, "municipalityCode": TENANT, "roles": []}, typ="at+jwt")
        assert there.verify(token).sub == "s-1"  # verified once, kept
        with store.write() as conn:
            here.end_session(conn, family)
        for _ in range(500):
            try:
                there.verify(token)
            except Problem as refused:
                assert refused.status == 401
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the other worker still accepts the token of an ended session")

        other_family = uuid.uuid4().hex
        other = keys.sign({"iss": issuer, "sub": "s-2", "aud": ACCESS_TOKEN_AUDIENCE, "client_id": "mamori-app", "scope": "openid",
                           "iat": now, "exp": now + 600, "jti": "k", "sid": other_family, "municipalityCode": TENANT, "roles": []}, typ="at+jwt")
        assert there.verify(other).sub == "s-2"
        generations.live = False  # as while the listener is reconnecting: notices may be missed
        with store.write() as conn:
            here.end_session(conn, other_family)
        with pytest.raises(Problem):
            there.verify(other)
    finally:
        notices.close()
        store.close()


def test_the_desk_feeds_hold_a_late_commit_back_too(pg_url: str) -> None:
    """Device keys and desk events page in (tx, seq) order like the change feed: a registration
    (or a batch of desk events) that began first and commits last is not passed by a desk's
    cursor, and comes exactly once."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cityos.checkin import device_page, event_page, parse_cursor, record_events, register_device
    from cityos.oidc import Caller
    from protocol.checkin import b64u, device_kid, iso_utc, raw_public

    store = Store(pg_url, pool_size=4)
    early_ref, late_ref = uuid.uuid4().hex, uuid.uuid4().hex  # household references
    tenant = "999999"  # a municipality of its own: no other test writes here
    staff = Caller("staff-1", tenant, frozenset({"shelter_staff"}), "openid")

    def register(conn, sub: str) -> str:
        key = Ed25519PrivateKey.generate().public_key()
        register_device(conn, Caller(sub, tenant, frozenset(), "openid"), device_kid(key).hex(), b64u(raw_public(key)))
        return device_kid(key).hex()

    def event(ref: str) -> dict:
        return {"id": uuid.uuid4().hex, "action": "check_in", "ref": ref, "householdSize": 1, "shelterId": "s-1",
                "municipalityCode": tenant, "at": iso_utc(1.7e9)}

    try:
        with store.read() as conn:
            keys_cursor, events_cursor = device_page(conn, tenant, (0, 0), 1000)["cursor"], event_page(conn, tenant, (0, 0), 1000)["cursor"]

        with store.write() as early:  # begins first (smaller transaction id), commits last
            early_kid = register(early, "resident-early")
            assert record_events(early, staff, [event(early_ref)], 1.7e9)[1] == {}
            with store.write() as late:
                late_kid = register(late, "resident-late")
                assert record_events(late, staff, [event(late_ref)], 1.7e9)[1] == {}
            with store.read() as conn:
                keys_during = device_page(conn, tenant, parse_cursor(keys_cursor, "since"), 1000)
                events_during = event_page(conn, tenant, parse_cursor(events_cursor, "after"), 1000)
            assert keys_during["keys"] == [] and events_during["events"] == []  # the later commit waits for the earlier one
        with store.read() as conn:
            keys_after = device_page(conn, tenant, parse_cursor(keys_during["cursor"], "since"), 1000)
            events_after = event_page(conn, tenant, parse_cursor(events_during["cursor"], "after"), 1000)
        assert [k["kid"] for k in keys_after["keys"]] == [early_kid, late_kid]
        assert [e["ref"] for e in events_after["events"]] == [early_ref, late_ref]
    finally:
        store.close()


def test_the_rate_limit_holds_for_all_workers_together(pg_url: str) -> None:
    """Two workers' buckets for one caller: once both have reported, what one let through is
    taken from the other's bucket (without sharing each would refill at the full rate)."""
    import time

    from cityos.limits import SharedTokenBuckets

    store = Store(pg_url, pool_size=1)  # makes rate_usage (cityos.limits is imported)
    here = SharedTokenBuckets(2, 10, store.conninfo, workers=2, background=False)
    there = SharedTokenBuckets(2, 10, store.conninfo, workers=2, background=False)
    here.SYNC_S = there.SYNC_S = 10.0  # reports count as consecutive however slow this machine is
    caller = f"sub:{uuid.uuid4().hex}"
    try:
        with psycopg.connect(store.conninfo, autocommit=True) as conn:
            assert all(here.take(caller) == 0 for _ in range(10))  # each worker's own burst at first
            assert all(there.take(caller) == 0 for _ in range(10))
            here.sync(conn)
            there.sync(conn)
            time.sleep(0.6)  # 1.2 requests' worth refilled
            assert here.take(caller) == 0
            here.sync(conn)  # learns the other's 10 since its last report
            assert here.take(caller) > 2  # about 5 s: the two together went past the limit (alone: 0.4 s)
            assert SharedTokenBuckets(2, 10, store.conninfo, workers=2, background=False).take(f"sub:{uuid.uuid4().hex}") == 0
    finally:
        store.close()
