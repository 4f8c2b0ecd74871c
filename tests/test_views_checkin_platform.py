"""Check-in screens logged in to the real cityos on loopback: a resident's phone uses the city's
keys and cannot open the desk; a shelter_staff desk checks the resident in, shows what is unsent,
syncs, and the platform publishes the shelter's occupancy."""
from __future__ import annotations

import shutil

import flet as ft
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.checkin import CardForm, MemberForm, ResidentCheckins, card_from_form, show_qr
from app.consent import DataCategory
from app.devicekeys import MemoryKeyStore
from app.platform import PlatformHttp
from app.state import Mamori
from offline.store import open_store
from tests.fakes import FakeShell
from tests.test_views import texts, unlabelled, walk
from tests.test_views_checkin import checkin_state, click, screen, toggle, type_into
from tests.test_views_family import logged_in_app


@pytest.fixture(scope="module")
def cityos(tmp_path_factory, data_dir):
    from cityos.testing import run_cityos

    with run_cityos(tmp_path_factory.mktemp("cityos"), data_dir=data_dir, extra_args=["--rate-limit", "0"]) as server:
        yield server


@pytest.fixture()
def desk_app(ube_store_file, ube, data_dir, tmp_path) -> Mamori:
    """A second device (the shelter's reception tablet) with its own store and key store."""
    copy = tmp_path / "desk" / "mamori.sqlite"
    copy.parent.mkdir()
    shutil.copy(ube_store_file, copy)
    db = open_store(copy)
    yield Mamori(db, ube, MemoryKeyStore(), data_dir)
    db.conn.close()


def keys_note(controls) -> str:
    return " ".join(texts([c for c in walk(controls) if getattr(c, "key", None) == "checkin-keys"]))


def test_resident_uses_city_keys_and_cannot_open_the_desk(app, cityos):
    me = logged_in_app(app, cityos.base_url, "ube-resident-1")
    shell = FakeShell(me, "/checkin")
    screen(me, shell, "/checkin")  # opening the screen has the sync engine fetch roles and keys
    shell.sync()
    controls = screen(me, shell, "/checkin")
    switch = next(c for c in walk(controls) if isinstance(c, ft.Switch))
    assert switch.disabled and not switch.value
    assert "都市OSの鍵" in keys_note(controls) and "shelter_staff" in keys_note(controls)
    assert "デモ用の鍵" not in " ".join(texts(controls)) and not unlabelled(controls)
    checkin_state(shell).staff = True  # even if set by hand, the desk stays shut
    assert "受付画面はスタッフ用です。上のスイッチで受付モードにしてください。" in texts(screen(me, shell, "/checkin/desk"))


def test_staff_desk_checks_in_the_residents_qr_and_syncs_occupancy(app, desk_app, cityos):
    phone = logged_in_app(app, cityos.base_url, "ube-resident-1")
    phone_shell = FakeShell(phone, "/checkin")
    screen(phone, phone_shell, "/checkin")  # registers the phone's key, fetches the seal key
    phone_shell.sync()
    svc = phone.checkin
    card = svc.save(CardForm(members=[MemberForm(name="宇部 一郎"), MemberForm(name="宇部 花子")]))
    qr = svc.qr(card).text

    staff = logged_in_app(desk_app, cityos.base_url, "ube-staff-1")
    shell = FakeShell(staff, "/checkin")
    screen(staff, shell, "/checkin")  # roles, desk keys, device keys
    shell.sync()
    controls = screen(staff, shell, "/checkin")
    assert "shelter_staff" not in keys_note(controls) and "都市OSの鍵" in keys_note(controls)
    toggle(controls, "受付（スタッフ）モード")
    desk = screen(staff, shell, "/checkin/desk")
    assert not unlabelled(desk)
    sync_line = next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-sync").value
    assert sync_line.startswith("未送信 0件 / 最終同期 ")
    type_into(desk, "QRコードの文字列（MC1:…）", qr)
    click(desk, "文字列で確認")  # checked in, then the sync engine sends it at once
    shell.sync()
    desk = screen(staff, shell, "/checkin/desk")
    assert any(t.startswith("受付完了：宇部 一郎 さん（2人）") for t in texts(desk))
    assert next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-sync").value.startswith("未送信 0件")
    shelter = checkin_state(shell).desk_shelter
    shown = httpx.get(cityos.base_url + f"/ngsi-ld/v1/entities/urn:ngsi-ld:EvacuationShelter:{shelter}",
                      headers={"NGSILD-Tenant": "352021"}).json()
    assert shown["occupancy"]["value"] == 2 and shown["status"]["value"] in ("open", "full")


def network_down(app: Mamori) -> PlatformHttp:
    """The network goes away: the link's connection now leads nowhere. Returns the live one."""
    live = app.link.http
    app.link.http = PlatformHttp("http://127.0.0.1:9", app.link.tenant, auth=app.link.session.auth, timeout=2)
    return live


def test_desk_offline_keeps_events_and_says_so(desk_app, cityos):
    staff = logged_in_app(desk_app, cityos.base_url, "ube-staff-1")
    shell = FakeShell(staff, "/checkin")
    screen(staff, shell, "/checkin")  # one online visit: roles and keys
    shell.sync()
    checkin_state(shell).staff = True
    svc = staff.checkin
    online = network_down(staff)
    screen(staff, shell, "/checkin/desk")  # picks the shelter
    shelter = next(h.shelter for h in staff.shelters.search("") if h.shelter.id == checkin_state(shell).desk_shelter)
    svc.desk(shelter).register_paper(card_from_form(CardForm(members=[MemberForm(name="紙 一郎")])))
    click(screen(staff, shell, "/checkin/desk"), "今すぐ同期")
    shell.sync()
    desk = screen(staff, shell, "/checkin/desk")
    assert next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-sync").value.startswith("未送信 1件")
    assert any(getattr(c, "key", None) == "checkin-sync-failed" for c in walk(desk))
    assert checkin_state(shell).staff and svc.staff_allowed()  # staff mode still works offline
    staff.link.http = online  # back online
    click(desk, "今すぐ同期")
    shell.sync()
    desk = screen(staff, shell, "/checkin/desk")
    assert next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-sync").value.startswith("未送信 0件")
    assert not any(getattr(c, "key", None) == "checkin-sync-failed" for c in walk(desk))


def test_self_check_in_stays_on_the_phone_until_consent_then_is_sent(app, desk_app, cityos):
    staff = logged_in_app(desk_app, cityos.base_url, "ube-staff-1")
    staff_shell = FakeShell(staff, "/checkin")
    screen(staff, staff_shell, "/checkin")
    staff_shell.sync()
    checkin_state(staff_shell).staff = True
    poster = next(c for c in walk(screen(staff, staff_shell, "/checkin/desk/poster")) if isinstance(c, ft.Image))
    shelter = checkin_state(staff_shell).desk_shelter

    phone = logged_in_app(app, cityos.base_url, "ube-resident-2")
    shell = FakeShell(phone, "/checkin")
    screen(phone, shell, "/checkin")  # the city's keys, the poster key among them
    shell.sync()
    svc = phone.checkin
    card = svc.save(CardForm(members=[MemberForm(name="宇部 花子")]))
    ResidentCheckins(phone.db, svc.directory).check_in_image(poster.src, card)
    shown = texts(screen(phone, shell, "/checkin/self"))
    assert {"避難者カードの同意がオフのため、チェックインの記録はこの端末だけに保存されています。", "この端末にある未送信の記録：1件"} <= set(shown)

    grant_evacuee_card(phone)
    shell.sync()  # the sync engine sends what waits
    assert not any(getattr(c, "key", None) == "checkin-unsent" for c in walk(screen(phone, shell, "/checkin/self")))
    body = httpx.get(cityos.base_url + f"/ngsi-ld/v1/entities/urn:ngsi-ld:EvacuationShelter:{shelter}",
                     headers={"NGSILD-Tenant": "352021"}).json()
    assert body["selfReported"]["value"] >= 1  # counted apart from desk-confirmed people


def test_staff_publish_the_shelter_closed_and_open_again(desk_app, cityos):
    staff = logged_in_app(desk_app, cityos.base_url, "ube-staff-1")
    shell = FakeShell(staff, "/checkin")
    screen(staff, shell, "/checkin")
    shell.sync()
    checkin_state(shell).staff = True
    click(screen(staff, shell, "/checkin/desk"), "閉鎖として公開")
    desk = screen(staff, shell, "/checkin/desk")
    assert "都市OSに公開しました：閉鎖" in texts(desk)
    shelter = checkin_state(shell).desk_shelter

    def status() -> str:
        return httpx.get(cityos.base_url + f"/ngsi-ld/v1/entities/urn:ngsi-ld:EvacuationShelter:{shelter}",
                         headers={"NGSILD-Tenant": "352021"}).json()["status"]["value"]
    assert status() == "closed"
    click(desk, "開設中として公開")
    assert status() in ("open", "full")


def test_the_platform_poster_is_kept_for_showing_again_offline(desk_app, cityos):
    staff = logged_in_app(desk_app, cityos.base_url, "ube-staff-1")
    shell = FakeShell(staff, "/checkin")
    screen(staff, shell, "/checkin")
    shell.sync()
    checkin_state(shell).staff = True
    first = next(c for c in walk(screen(staff, shell, "/checkin/desk/poster")) if isinstance(c, ft.Image)).src
    network_down(staff)
    checkin_state(shell).poster = None  # the screen is opened again later
    again = next(c for c in walk(screen(staff, shell, "/checkin/desk/poster")) if isinstance(c, ft.Image)).src
    assert again == first


def grant_evacuee_card(phone: Mamori) -> None:
    phone.link.set_consent(DataCategory.EVACUEE_CARD, True)
    phone.link.sync.run_due()  # the consent reaches the platform through the outbox
    assert phone.link.outbox.queued_count() == 0


def test_survey_answers_reach_the_desk_of_their_shelter(app, desk_app, cityos):
    staff = logged_in_app(desk_app, cityos.base_url, "ube-staff-1")
    staff_shell = FakeShell(staff, "/checkin")
    screen(staff, staff_shell, "/checkin")
    staff_shell.sync()
    checkin_state(staff_shell).staff = True
    screen(staff, staff_shell, "/checkin/desk")  # picks the desk's shelter
    shelter = checkin_state(staff_shell).desk_shelter

    phone = logged_in_app(app, cityos.base_url, "ube-resident-1")
    grant_evacuee_card(phone)
    shell = FakeShell(phone, "/checkin")
    checkin_state(shell).survey_shelter = shelter
    controls = screen(phone, shell, "/checkin/survey")
    for group, value in zip([c for c in walk(controls) if isinstance(c, ft.RadioGroup)], ("5", "toilet", "1"), strict=True):
        group.on_change(type("E", (), {"control": type("C", (), {"value": value})()})())
    toggle(controls, "トイレ")
    click(controls, "回答を送る")
    shell.sync()  # the sync engine sends it
    assert "ご回答ありがとうございました。市に送信します（通信できないときは、できるようになってから）。" in texts(
        screen(phone, shell, "/checkin/survey"))

    click(screen(staff, staff_shell, "/checkin/desk"), "今すぐ同期")
    staff_shell.sync()
    desk = texts(screen(staff, staff_shell, "/checkin/desk"))
    assert "避難所生活アンケート" in desk and "回答 1件（都市OSの集計）" in desk
    assert "いちばん困っていることは何ですか。 トイレ 1" in desk


def test_desk_fetches_keys_again_for_a_phone_registered_after_it_opened(app, desk_app, cityos):
    staff = logged_in_app(desk_app, cityos.base_url, "ube-staff-1")
    shell = FakeShell(staff, "/checkin")
    screen(staff, shell, "/checkin")  # roles, desk keys, device keys
    shell.sync()
    toggle(screen(staff, shell, "/checkin"), "受付（スタッフ）モード")
    desk = screen(staff, shell, "/checkin/desk")

    phone = logged_in_app(app, cityos.base_url, "ube-resident-2")  # registers its key only now
    phone_shell = FakeShell(phone, "/checkin")
    screen(phone, phone_shell, "/checkin")
    phone_shell.sync()
    svc = phone.checkin
    card = svc.save(CardForm(members=[MemberForm(name="宇部 花子")]))
    type_into(desk, "QRコードの文字列（MC1:…）", svc.qr(card).text)
    click(desk, "文字列で確認")  # unknown key: one refresh, then accepted
    assert any(t.startswith("受付完了：宇部 花子 さん（1人）") for t in texts(screen(staff, shell, "/checkin/desk")))

    # A key the city never registered: refused in words for staff, with the paper path.
    forged = show_qr(card, Ed25519PrivateKey.generate(), svc.directory, "352021").text
    desk = screen(staff, shell, "/checkin/desk")
    type_into(desk, "QRコードの文字列（MC1:…）", forged)
    click(desk, "文字列で確認")
    shown = " ".join(texts(screen(staff, shell, "/checkin/desk")))
    assert "鍵を取り直して確かめました" in shown and "紙の避難者カードで登録" in shown
