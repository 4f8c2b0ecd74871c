"""The family tab built from state: one-tap answers offline, the list, share text, the alert
banner, the HQ route and PFIF export; and, against the real platform on loopback, groups."""
from __future__ import annotations

import base64
import io
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import flet as ft
import flet_map as fm
import pytest
import segno
from PIL import Image

from app.checkin import NoQrFound
from app.consent import DataCategory
from app.family import LOCAL_ME, Relation, SafetyStatus, alert_entity
from app.identity import IDENTITY_KEY, Identity
from app.platform import PlatformClient
from app.sync import FeatureState
from geo.models import LatLon
from protocol.hazards import HazardType
from tests.fakes import FakeShell
from tests.test_views import named, texts, unlabelled, walk
from views import home
from views.features import family
from views.features.family_ctl import controller


def button(controls, label: str) -> ft.Button:
    found = [c for c in walk(controls) if isinstance(c,
                                                     ft.Button) and label in (c.content if isinstance(c.content,
                                                                                                      str) else " ".join(texts([c.content])))]
    assert found, f"no button {label!r}"
    return found[0]


def tap(control) -> None:
    control.on_click(None)


def test_offline_answer_in_one_tap_shows_my_status_and_share_text(app):
    shell = FakeShell(app)
    controls = family.tab(app, shell)
    assert not unlabelled(controls)
    labels = [b for b in walk(controls) if isinstance(b, ft.Button) and (b.key or "").startswith("answer-")]
    assert [texts([b.content])[0] for b in labels] == ["無事", "助けが必要", "けがをしている", "避難中", "避難所にいる"]
    assert any(c.key == "family-needs-login" for c in walk(controls))  # says plainly that sharing needs login
    assert "まだ回答していません。" in texts(controls)

    ctl = controller(app, shell)
    ctl.note = "家にいます"
    tap(labels[0])
    controls = family.tab(app, shell)
    mine = next(c for c in walk(controls) if c.key == "my-status")
    assert "無事 · たった今" in texts([mine]) and "家にいます" in texts([mine])
    assert "「無事」をこの端末に保存しました（家族には送られません）。" in texts(controls)
    # Before login nothing is queued for the platform.
    assert app.db.execute("SELECT count(*) FROM sync_outbox").fetchone()[0] == 0
    assert ctl.book().latest(LOCAL_ME).status is SafetyStatus.SAFE

    tap(button(controls, "文字で伝える"))
    controls = family.tab(app, shell)
    share = next(c for c in walk(controls) if c.key == "share-text")
    assert share.value.startswith("安否: 無事 / 家にいます / ") and share.read_only
    tap(button(controls, "文をコピー"))
    assert shell.page.tasks and shell.page.tasks[-1][1] == (share.value,)
    tap(button(controls, "ログイン・同意の設定へ"))
    assert shell.routes == ["/settings/account"]


def test_location_switch_needs_consent_and_answer_carries_position(app):
    shell = FakeShell(app)
    switch = next(c for c in walk(family.tab(app, shell)) if isinstance(c, ft.Switch))
    assert switch.disabled
    app.link.consents.grant(DataCategory.LOCATION)
    app.position = LatLon(33.9512, 131.2471)
    switch = next(c for c in walk(family.tab(app, shell)) if isinstance(c, ft.Switch))
    assert not switch.disabled
    switch.value = True
    switch.on_change(type("E", (), {"control": switch})())
    tap(next(c for c in walk(family.tab(app, shell)) if c.key == "answer-atShelter"))
    latest = controller(app, shell).book().latest(LOCAL_ME)
    assert (latest.lat, latest.lon) == (33.9512, 131.2471)
    shown = " ".join(texts(family.tab(app, shell)))
    nearest = app.shelters.nearest(LatLon(33.9512, 131.2471), n=1)[0].shelter.name
    assert f"{nearest}の近く（直線 " in shown  # a place the family knows...
    assert "33.95" not in shown and "131.24" not in shown  # ...never raw coordinates


def test_alert_banner_on_home_for_the_municipality_and_answered_after_tap(app, monkeypatch):
    shell = FakeShell(app)
    now = datetime.now(UTC)
    entities = [
        alert_entity("flood-1", "352021", hazard="flood", level=4, headline="厚東川 氾濫危険", issued_at=now - timedelta(minutes=5),
                     expires_at=now + timedelta(hours=1), municipalities=["352021"]),
        alert_entity("far-1", "072028", hazard="earthquake", level=5, headline="会津", issued_at=now,
                     expires_at=now + timedelta(hours=1), municipalities=["072028"]),
        alert_entity("old-1", "352021", hazard="flood", level=5, headline="終わった", issued_at=now - timedelta(hours=3),
                     expires_at=now - timedelta(hours=1), municipalities=["352021"]),
    ]
    monkeypatch.setattr(app.link, "entities", lambda name: entities if name == "alerts" else [])
    shown = family.banners(app, shell)
    assert [c.key for c in shown] == ["alert-banner-urn:ngsi-ld:Alert:flood-1"]
    words = texts(shown)
    assert "警戒レベル4 避難指示 全員避難" in words and "厚東川 氾濫危険" in words and "災害の種類: 洪水" in words
    app.set_hazard(HazardType.TSUNAMI)  # the resident's own choice...
    app.set_home(LatLon(33.9513, 131.2470))
    shelter_entities = [{"id": f"urn:ngsi-ld:EvacuationShelter:{h.shelter.id}", "status": {"type": "Property", "value": "open"},
                         "occupancy": {"type": "Property", "value": 12}}
                        for h in app.shelters.nearest(LatLon(33.9513, 131.2470), 3, HazardType.FLOOD)[:1]]
    monkeypatch.setattr(app.link, "entities", lambda name: {"alerts": entities, "shelter_status": shelter_entities}.get(name, []))
    controls = home.build(app, shell.navigate, shown)
    assert controls[0] is shown[0] and not unlabelled(controls)
    # ... but during a flood alert Home lists sites safe for floods, and says which are open.
    words = texts(controls)
    assert "警報の災害（洪水）に対応した近くの避難場所" in words
    assert any("開設中・12人" in w for w in words) and any("開設状況は未確認" in w for w in words)
    tap(button(shown, "安否を回答する"))
    assert shell.routes == ["/family"]
    tap(next(c for c in walk(family.tab(app, shell)) if c.key == "answer-evacuating"))
    assert "回答済みです。状況が変わったら、もう一度回答してください。" in texts(family.banners(app, shell))


def test_notify_new_once_and_survives_missing_notifier(app, monkeypatch):
    shell = FakeShell(app)
    now = datetime.now(UTC)
    alert = alert_entity("flood-2", "352021", hazard="flood", level=3, headline="", issued_at=now,
                         expires_at=now + timedelta(hours=1), municipalities=["352021"])
    monkeypatch.setattr(app.link, "entities", lambda name: [alert])
    ctl = controller(app, shell)
    pulled = {"alerts": FeatureState("alerts", last_success_at=time.time())}
    ctl._synced(pulled)  # what the sync engine's observer calls; plyer has no backend here: no crash
    assert shell.renders == 1  # a new banner: redraw
    ctl._synced(pulled)
    assert shell.renders == 1
    seen = app.db.execute("SELECT alert_id, notified_at IS NOT NULL FROM family_alert_seen").fetchall()
    assert seen == [("urn:ngsi-ld:Alert:flood-2", 1)]


def test_hq_route_is_for_staff_only(app):
    shell = FakeShell(app)
    view = shell.open("/family/hq")
    assert any(c.key == "hq-staff-only" for c in walk(view.controls))
    assert shell.open("/family/elsewhere") is None


def test_logged_out_uses_no_cached_account(app):
    app.keys.put(IDENTITY_KEY, Identity("abc", "x").to_json().encode())  # left by an older version or a crash
    ctl = controller(app, FakeShell(app))
    assert ctl.me() == LOCAL_ME and ctl.identity is None


# ---- logged in, against the real platform on loopback -------------------------------------------
@pytest.fixture(scope="module")
def cityos(tmp_path_factory, data_dir):
    from cityos.testing import run_cityos

    with run_cityos(tmp_path_factory.mktemp("cityos"), data_dir=data_dir, extra_args=["--rate-limit", "0"]) as server:
        yield server


def logged_in_app(app, base_url: str, username: str):
    from app.connection import PlatformLink
    from app.state import Mamori
    from tests.test_identity_cityos import form_browser

    db_path = Path(app.db.execute("PRAGMA database_list").fetchone()[2])
    link = PlatformLink(db_path, app.db, app.keys, base_url, app.region.code)
    link.session.login(open_browser=form_browser(username), timeout=20)
    return Mamori(app.db, app.region, app.keys, app.data_dir, link=link)


def test_group_invite_join_and_family_list(app, cityos, tmp_path):
    from tests.test_family_cityos import Phone

    me = logged_in_app(app, cityos.base_url, "ube-resident-1")
    shell = FakeShell(me)
    family.tab(me, shell)  # opening the tab kicks the sync engine: who am I, my groups
    shell.sync()
    controls = family.tab(me, shell)
    ctl = controller(me, shell)
    assert ctl.identity.name == "宇部 一郎" and not ctl.is_staff()
    assert not unlabelled(controls)
    ctl.group_name = "宇部家"
    tap(button(controls, "グループを作る"))
    controls = family.tab(me, shell)
    assert "グループ: 宇部家" in texts(controls) and "宇部 一郎 (自分)" in texts(controls)
    assert shell.told[-1].startswith("グループを作りました")  # said where the person looks: a snack bar
    group_id = ctl.book().groups()[0]["id"]

    tap(button(controls, "招待する（QR）"))
    controls = family.tab(me, shell)
    qr = next(c for c in walk(controls) if c.key == "invite-qr")
    assert qr.src[:8] == b"\x89PNG\r\n\x1a\n"
    invite = next(c for c in walk(controls) if c.key == "invite-text").value
    assert invite.startswith("MF1:") and not unlabelled(controls)

    hanako = Phone(tmp_path / "b.db", cityos.base_url, "ube-resident-2")
    try:
        hanako.family.join(invite)
        hanako.consents.grant(DataCategory.SAFETY_STATUS)
        hanako.family.share("safety_status", "family", True)
        hanako.consents.grant(DataCategory.LOCATION)
        hanako.family.share("location", "family", True)
        hanako.book.answer("evacuating", message="公民館へ向かっています", lat=33.9512, lon=131.2471)
        hanako.push()
        tap(button(controls, "最新にする"))
        shell.sync()
        controls = family.tab(me, shell)
        row = next(c for c in walk(controls) if c.key == f"member-{hanako.me}")
        assert "避難中 · たった今 · 信行寺の近く（直線 154 m）" in texts([row]) and "公民館へ向かっています" in texts([row])
        family_map = next(c for c in walk(controls) if isinstance(c, ft.Semantics) and c.label == "宇部家 の家族の地図（位置つきの回答）")
        labels = [m.content.label for m in walk([family_map]) if isinstance(m, fm.Marker)]
        assert [x for x in labels if not x.startswith("避難場所：")] == ["宇部 花子 避難中 たった今"]
        assert any(x.startswith("避難場所：") for x in labels)  # the shelters nearby, like the other maps
        assert any(isinstance(c, fm.PolylineLayer) for c in walk([family_map]))  # and the streets

        # Hanako (who needs support) consents and names me: I may answer for her, marked as proxy.
        hanako.family.share("safety_status", "caregiver", True)
        hanako.push()
        hanako.family.client.name_caregiver(ctl.me(), Relation.FAMILY)
        tap(button(family.tab(me, shell), "最新にする"))
        shell.sync()
        tap(button(family.tab(me, shell), "宇部 花子さんの代わりに回答"))
        assert shell.routes[-1] == f"/family/proxy/{hanako.me}"
        proxy_view = shell.open(f"/family/proxy/{hanako.me}")
        assert not unlabelled(proxy_view.controls)
        tap(button(proxy_view.controls, "助けが必要"))
        shell.sync()  # the proxy answer goes out through the sync engine
        row = next(c for c in walk(family.tab(me, shell)) if c.key == f"member-{hanako.me}")
        assert "助けが必要 · たった今 · 代理回答" in texts([row])
        assert hanako.family.pull() and hanako.book.latest(hanako.me).reported_by == ctl.me()

        # Owner removes a member in two taps; a damaged invite is refused before any network.
        tap(button(controls, "宇部 花子さんを外す"))
        tap(button(family.tab(me, shell), "本当に「宇部 花子さんを外す」"))
        assert [m.person for m in ctl.book().members(group_id)] == [ctl.me()]
        ctl.join("MF1:broken")
        assert "招待コードを読み取れません。もう一度読み取ってください" in texts(family.tab(me, shell))

        # My answer queues for the platform once I consent; sharing choices are queued too.
        # The message after answering names who receives it, from the consents.
        me.link.consents.grant(DataCategory.SAFETY_STATUS)
        tap(button(family.tab(me, shell), "無事"))
        assert any("「無事」を保存しました。届く相手：市（災害対策本部）" in x for x in texts(family.tab(me, shell)))
        # A sharing switch asks first; only "stop" queues the revoke, and the history records it.
        switch = named(family.tab(me, shell), ft.Switch, "家族に自分の位置を見せる")
        switch.value = False
        switch.on_change(type("E", (), {"control": switch})())
        assert not [w for w in me.link.outbox.pending(50) if w.body.get("type") == "Consent" and w.body["category"] == "location"]
        assert any("やめますか" in x for x in texts(family.tab(me, shell)))
        tap(button(family.tab(me, shell), "やめる"))
        bodies = [w.body for w in me.link.outbox.pending(50)]
        assert any(b.get("type") == "SafetyStatus" for b in bodies)
        assert {"action": "revoke", "category": "location", "recipient": "family"}.items() <= next(
            b for b in bodies if b.get("type") == "Consent" and b["category"] == "location").items()
        assert ("location", "revoke", "family") in [(e.category.value, e.action, e.recipient) for e in me.link.history()]

        # Registering as 要支援者: pick needs, asked for the care-information consent, then queued.
        box = named(family.tab(me, shell), ft.Checkbox, "車いす")
        box.value = True
        box.on_change(type("E", (), {"control": box})())
        tap(button(family.tab(me, shell), "登録する"))
        assert not [w for w in me.link.outbox.pending(80) if w.body.get("type") == "CareInformation"]  # asked first
        tap(button(family.tab(me, shell), "同意して登録する"))
        care = [w.body for w in me.link.outbox.pending(80) if w.body.get("type") == "CareInformation"]
        assert care and care[0]["needs"]["value"] == ["wheelchair"] and care[0]["supportNeeded"]["value"] is True
        tap(button(family.tab(me, shell), "登録を取り消す"))
        tap(button(family.tab(me, shell), "取り消す"))
        assert not [w for w in me.link.outbox.pending(80) if w.body.get("type") == "CareInformation"]
        assert [e.action for e in me.link.history() if e.category.value == "care_information"][-2:] == ["grant", "revoke"]

        tap(button(family.tab(me, shell), "PFIF形式で書き出す"))
        path = Path(ctl.export_path)
        assert path.parent.parent == tmp_path and b"http://zesty.ca/pfif/1.4" in path.read_bytes()
    finally:
        hanako.close()


@pytest.fixture()
def server_zone_not_jst():
    """The process runs in another time zone than the residents' (as a server may)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_hq_counts_answers_for_city_staff(app, cityos, tmp_path, server_zone_not_jst):
    from tests.test_family_cityos import Phone

    resident = Phone(tmp_path / "r.db", cityos.base_url, "ube-resident-2")
    try:
        resident.consents.grant(DataCategory.SAFETY_STATUS)
        resident.consents.grant(DataCategory.LOCATION)
        resident.book.answer("needHelp", lat=33.9512, lon=131.2471, place="宇部市立琴芝小学校")
        resident.push()
    finally:
        resident.close()
    staff = logged_in_app(app, cityos.base_url, "ube-city-1")
    shell = FakeShell(staff)
    ctl = controller(staff, shell)
    view = shell.open("/family/hq")
    tap(button(view.controls, "最新の集計を読み込む"))
    assert ctl.is_staff() and ctl.hq is not None
    controls = shell.open("/family/hq").controls
    words = " ".join(texts(controls))
    assert re.search(r"\S+ の地区: 助けが必要 1", words)  # areas: each designated shelter's catchment
    assert "地区：指定避難所の区域" in words  # and the screen says which areas these are
    assert "回答の地図（位置あり 1件）" in words and not unlabelled(controls)
    # The SOS list names the person, what, where and when; HQ marks it handled.
    sos = next(c for c in walk(controls) if c.key == f"hq-sos-{resident.me}")
    assert "宇部 花子" in texts([sos]) and any("宇部市立琴芝小学校" in x for x in texts([sos]))
    when = next(p.sos for p in ctl.hq_people if p.person == resident.me).observed_at  # type: ignore[union-attr]
    assert when.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%m/%d %H:%M") in " ".join(texts([sos]))  # JST
    # ... and shows where on a street map, the marker naming the person.
    sos_map = next(c for c in walk(controls) if isinstance(c, ft.Semantics) and c.label == "救助要請の場所の地図（1件）")
    layers = next(c for c in walk([sos_map]) if isinstance(c, fm.Map)).layers
    assert isinstance(layers[0], fm.PolylineLayer) and len(layers[0].polylines) > 100  # Ube's streets
    assert layers[-1].markers[0].content.label.startswith("宇部 花子 助けが必要")
    tap(button(controls, "宇部 花子 さんの救助要請を対応済みにする"))
    controls = shell.open("/family/hq").controls
    assert not [c for c in walk(controls) if c.key == f"hq-sos-{resident.me}"] and "救助要請（未対応） 0 件" in texts(controls)
    # An alert for one chosen catchment: a polygon, not the whole city.
    area = next(c for c in walk(controls) if isinstance(c, ft.Dropdown) and c.label == "対象の地区を加える")
    area.value = area.options[0].key
    area.on_select(type("E", (), {"control": area})())
    controls = shell.open("/family/hq").controls
    assert f"対象：{area.options[0].key}" in texts(controls)
    tap(button(controls, "警報を発令する"))
    client = PlatformClient(staff.link.http)  # the staff app's own link
    issued = [e for e in client.iter_entities("Alert") if (e.get("location") or {}).get("value", {}).get("type") == "MultiPolygon"]
    assert issued and "targetMunicipalities" not in issued[-1]
    # Search by name (only people who share with the city).
    ctl.search_hq("花子")
    assert [c for c in walk(shell.open("/family/hq").controls) if c.key == f"hq-found-{resident.me}"]
    # The family tab offers the HQ view to staff only.
    assert button(family.tab(staff, shell), "災害対策本部の画面")


def test_invite_picture_that_is_not_an_invite_is_named(app):
    shell = FakeShell(app)
    ctl = controller(app, shell)
    other = base64.b64decode(segno.make("https://example.org/", error="m").png_data_uri(scale=6).split(",", 1)[1])
    family.read_invite(ctl, other)
    assert "招待コードを読み取れません。もう一度読み取ってください" in texts(family.tab(app, shell))
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, "PNG")
    with pytest.raises(NoQrFound):
        family.read_invite(ctl, blank.getvalue())
