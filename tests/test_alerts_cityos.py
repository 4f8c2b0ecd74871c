"""Alerts end to end: the city issues them (CLI test alert, staff over NGSI-LD), the app pulls
them through the sync engine, keeps them offline and shows only those targeting it now."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.consent import ConsentLedger
from app.family import Place, alert_entity, alerts_for, read_alerts
from app.identity import MemoryTokenStore, install_key
from app.platform import PlatformClient, PlatformHttp
from app.sync import OutboxSync
from cityos.testing import run_cityos
from offline.outbox import Outbox
from offline.store import open_store
from tests.test_identity_cityos import login

ROOT = Path(__file__).resolve().parent.parent
UBE_HOME = Place(33.951, 131.247, "352021")
BOX = {"type": "Polygon", "coordinates": [[[131.20, 33.93], [131.30, 33.93], [131.30, 33.98], [131.20, 33.98], [131.20, 33.93]]]}


def test_city_alerts_reach_the_app_and_stay_offline(tmp_path) -> None:
    with run_cityos(tmp_path / "cityos", extra_args=["--rate-limit", "0"]) as server:
        db_url = server.args[server.args.index("--db") + 1]
        cli = subprocess.run([sys.executable, "-m", "cityos.alerts", "--db", db_url, "--test", "--hazard", "flood",
                              "--level", "3", "--minutes", "30"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        assert cli.returncode == 0, cli.stderr
        test_id = cli.stdout.strip()
        bad = subprocess.run([sys.executable, "-m", "cityos.alerts", "--db", db_url, "--level", "7"],
                             cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        assert bad.returncode == 2 and "level must be 1..5" in bad.stderr

        now = datetime.now(UTC)
        staff = PlatformClient(PlatformHttp(server.base_url, "352021", auth=login(server.base_url, "ube-city-1").auth))
        area = alert_entity("kotou-river", "352021", hazard="flood", level=4, headline="厚東川 氾濫危険",
                            issued_at=now, expires_at=now + timedelta(hours=2), polygon=BOX)
        old = alert_entity("yesterday", "352021", hazard="landslide", level=3, headline="",
                           issued_at=now - timedelta(days=1), expires_at=now - timedelta(hours=20), municipalities=["352021"])
        assert not staff.upsert([area, old]).failed
        resident = PlatformClient(PlatformHttp(server.base_url, "352021", auth=login(server.base_url, "ube-resident-1").auth))
        refused = resident.upsert([alert_entity("fake", "352021", hazard="fire", level=5, headline="", issued_at=now,
                                                expires_at=now + timedelta(hours=1), municipalities=["352021"])])
        assert "city_staff" in refused.failed["urn:ngsi-ld:Alert:fake"]  # residents cannot publish alerts

        db = open_store(tmp_path / "app.db")
        outbox = Outbox(db, install_key(MemoryTokenStore()), ConsentLedger(db).is_granted)
        engine = OutboxSync(db, outbox, PlatformClient(PlatformHttp(server.base_url, "352021")))
        assert engine.pull("alerts") == 3

    # The platform is gone: the phone still knows its alerts.
    offline = OutboxSync(db, outbox, PlatformClient(PlatformHttp("http://127.0.0.1:9", "352021")))
    alerts = read_alerts(offline.entities("alerts"))
    assert len(alerts) == 3
    at_home = alerts_for(alerts, [UBE_HOME], now)
    assert [a.id for a in at_home] == ["urn:ngsi-ld:Alert:kotou-river", test_id]  # level 4 before the level-3 test
    assert at_home[1].is_test and at_home[1].municipalities == {"352021"}
    assert [a.id for a in alerts_for(alerts, [Place(34.2, 131.5)], now)] == []  # outside the box, town unknown
    assert [a.id for a in alerts_for(alerts, [UBE_HOME], now + timedelta(minutes=31))] == ["urn:ngsi-ld:Alert:kotou-river"]
