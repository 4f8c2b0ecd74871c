"""Shelter QR check-in screens built from state and asserted on the control tree: the resident's
card and QR, the staff desk (QR text, paper form, check-out, search, CSV), the survey."""
from __future__ import annotations

from pathlib import Path

import base45
import flet as ft
import pytest

from app.checkin import (
    CardForm,
    FormError,
    MemberForm,
    ResidentCheckins,
    card_from_form,
    parse_birth,
    read_qr_texts,
)
from app.checkin._service import DEVICE_KEY, SEAL_KEY
from app.household import AgeBand, Household, HouseholdMember, Mobility
from app.i18n import messages
from tests.fakes import FakeShell
from tests.test_views import named, texts, unlabelled, walk
from views.features import checkin
from views.features.checkin_state import CheckinScreen

BUTTONS = (ft.Button, ft.OutlinedButton, ft.TextButton)


class Event:
    def __init__(self, value: object) -> None:
        self.control = type("C", (), {"value": value})()


@pytest.fixture()
def shell(app):
    return FakeShell(app, "/checkin")


def screen(app, shell, route: str) -> list[ft.Control]:
    assert shell.app is app
    view = shell.open(route)
    assert view is not None, route
    return list(view.controls)


def checkin_state(shell) -> CheckinScreen:
    return checkin.screen_state(shell)


def click(controls, label: str) -> None:
    button = next(c for c in walk(controls) if isinstance(c, BUTTONS) and c.content == label)
    button.on_click(None)


def type_into(controls, label: str, value: str, nth: int = 0) -> None:
    fields = [c for c in walk(controls) if isinstance(c, ft.TextField) and c.label == label]
    fields[nth].on_change(Event(value))


def submit(controls, label: str, value: str) -> None:
    field = next(c for c in walk(controls) if isinstance(c, ft.TextField) and c.label == label)
    field.on_submit(Event(value))


def toggle(controls, label: str, value: bool = True) -> None:
    named(controls, (ft.Switch, ft.Checkbox), label).on_change(Event(value))


def errors(controls) -> list[str]:
    return [t for c in walk(controls) if getattr(c, "key", None) == "checkin-error" for t in texts([c])]


def fill_card(app, shell) -> None:
    controls = screen(app, shell, "/checkin")
    type_into(controls, "氏名", "宇部 太郎")
    type_into(controls, "フリガナ", "ウベ タロウ")
    type_into(controls, "生年月日", "1950/4/1")
    type_into(controls, "服薬中の薬", "降圧剤")
    type_into(controls, "住所", "山口県宇部市常盤町1-7-1")
    type_into(controls, "電話番号", "0836-31-1111")
    click(controls, "人を追加")
    controls = screen(app, shell, "/checkin")
    type_into(controls, "氏名", "宇部 さくら", nth=1)
    type_into(controls, "生年月日", "2024-01-10", nth=1)
    type_into(controls, "アレルギー", "卵、乳", nth=1)
    click(controls, "保存")


def qr_text(controls) -> str:
    image = next(c for c in walk(controls) if isinstance(c, ft.Image))
    [text] = read_qr_texts(image.src)  # what a desk camera reads off the screen
    return text


def staff(app, shell) -> list[ft.Control]:
    toggle(screen(app, shell, "/checkin"), "受付（スタッフ）モード")
    assert shell.routes[-1] == "/checkin/desk"
    return screen(app, shell, "/checkin/desk")


def test_resident_fills_the_card_once_and_it_is_kept_encrypted(app, shell):
    controls = screen(app, shell, "/checkin")
    assert "避難者カード" in texts(controls) and not unlabelled(controls)
    assert any("デモ用の鍵" in t for t in texts(controls))
    fill_card(app, shell)
    summary = texts(screen(app, shell, "/checkin"))
    assert "避難者カードを保存しました（この端末に暗号化して保存）。" in summary
    assert "世帯 2人" in summary
    assert any(t.startswith("宇部 さくら") and "乳幼児" in t and "アレルギー: 卵、乳" in t for t in summary)
    dump = "\n".join(app.db.conn.iterdump())
    assert "宇部 太郎" not in dump and "ウベ タロウ" not in dump and "降圧剤" not in dump
    # Secrets stay in the device key store; only public keys are in SQLite.
    assert app.keys.get(DEVICE_KEY) is not None and app.keys.get(SEAL_KEY + app.region.code) is not None
    blobs = b"".join(r[0] for r in app.db.execute("SELECT raw FROM checkin_public_key").fetchall())
    assert app.keys.get(DEVICE_KEY) not in blobs and app.keys.get(SEAL_KEY + app.region.code) not in blobs


def test_form_mistakes_are_named_and_nothing_is_saved(app, shell):
    controls = screen(app, shell, "/checkin")
    click(controls, "保存")
    assert errors(screen(app, shell, "/checkin")) == ["1人目の氏名を入力してください。"]
    controls = screen(app, shell, "/checkin")
    type_into(controls, "氏名", "宇部 太郎")
    type_into(controls, "生年月日", "昭和25年")
    click(controls, "保存")
    assert errors(screen(app, shell, "/checkin")) == ["1人目の生年月日が読めません。例 1980-04-01 のように入力してください。"]
    assert app.checkin.card() is None


def test_form_parsing_accepts_common_date_styles():
    assert str(parse_birth("1980/4/1", 1)) == str(parse_birth("19800401", 1)) == "1980-04-01"
    assert str(parse_birth("1980年4月1日", 1)) == "1980-04-01"
    with pytest.raises(FormError):
        parse_birth("1980-02-30", 1)
    with pytest.raises(FormError) as bad:
        card_from_form(CardForm(members=[MemberForm(name="宇部 太郎")], pets="two"))
    assert bad.value.key == "checkin.form.bad_pets"
    card = card_from_form(CardForm(members=[MemberForm(name="宇部 太郎", allergies="そば, 卵、乳")], card_id=b"12345678"))
    assert card.card_id == b"12345678" and card.members[0].allergies == ("そば", "卵", "乳")


def test_show_qr_gives_a_big_readable_code_that_the_desk_confirms_once(app, shell):
    fill_card(app, shell)
    click(screen(app, shell, "/checkin"), "QRを表示")
    assert shell.routes[-1] == "/checkin/qr"
    controls = screen(app, shell, "/checkin/qr")
    assert not unlabelled(controls)
    image = next(c for c in walk(controls) if isinstance(c, ft.Image))
    assert image.width >= 300 and image.semantics_label == "チェックイン用QRコード"
    assert any(t.startswith("有効期限 ") for t in texts(controls))
    assert any("ほかの人が読み取っても個人情報は見えません" in t for t in texts(controls))
    text = qr_text(controls)
    assert text.startswith("MC1:") and "宇部" not in text

    desk = staff(app, shell)
    assert not unlabelled(desk)
    assert {"QR画像を読み込む", "カメラで読み取る"} <= {c.content for c in walk(desk) if isinstance(c, BUTTONS)}
    occupancy = next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-occupancy").value
    assert occupancy.startswith("在所 0人 / 収容 ")
    type_into(desk, "QRコードの文字列（MC1:…）", text)
    click(desk, "文字列で確認")
    desk = screen(app, shell, "/checkin/desk")
    shown = texts(desk)
    assert "受付完了：宇部 太郎 さん（2人）のチェックインを確認しました" in shown
    assert any("服薬: 降圧剤" in t for t in shown)
    assert next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-occupancy").value.startswith("在所 2人 / 収容 ")
    assert "宇部 太郎、宇部 さくら" in shown

    type_into(desk, "QRコードの文字列（MC1:…）", text)  # the same code again: a replay
    click(desk, "文字列で確認")
    desk = screen(app, shell, "/checkin/desk")
    assert errors(desk) == ["このQRコードは使用済みです。新しいQRコードを表示してください。"]
    assert next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-occupancy").value.startswith("在所 2人 ")


def test_forged_and_garbled_codes_show_their_message_in_red(app, shell):
    fill_card(app, shell)
    click(screen(app, shell, "/checkin"), "QRを表示")
    text = qr_text(screen(app, shell, "/checkin/qr"))
    raw = bytearray(base45.b45decode(text[4:]))
    raw[-1] ^= 1  # one bit of the signature
    forged = "MC1:" + base45.b45encode(bytes(raw)).decode()
    desk = staff(app, shell)
    for code, message in ((forged, "QRコードの署名が一致しません（偽造または改ざんの可能性）。"),
                          ("https://example.com", "避難所チェックイン用のQRコードではありません。")):
        type_into(desk, "QRコードの文字列（MC1:…）", code)
        click(desk, "文字列で確認")
        desk = screen(app, shell, "/checkin/desk")
        [error] = [c for c in walk(desk) if getattr(c, "key", None) == "checkin-error"]
        assert texts([error]) == [message]
        assert next(c for c in walk([error]) if isinstance(c, ft.Text)).color == ft.Colors.ERROR


def test_staff_register_paper_card_search_check_out_and_export(app, shell, tmp_path):
    desk = staff(app, shell)
    click(desk, "スマホのない方を紙の避難者カードで登録")
    assert shell.routes[-1] == "/checkin/desk/paper"
    paper = screen(app, shell, "/checkin/desk/paper")
    assert not unlabelled(paper)
    assert "性別" not in texts(paper)  # the short form
    type_into(paper, "氏名", "西岐波 ハナ")
    type_into(paper, "フリガナ", "ニシキワ ハナ")
    type_into(paper, "ペットの数", "1")
    next(c for c in walk(paper) if isinstance(c, ft.RadioGroup) and c.value == "IN_SHELTER").on_change(Event("IN_CAR"))
    click(paper, "登録してチェックイン")
    assert shell.routes[-1] == "/checkin/desk"
    desk = screen(app, shell, "/checkin/desk")
    shown = texts(desk)
    assert "受付完了：西岐波 ハナ さん（1人）のチェックインを確認しました" in shown
    assert any("ペット 1世帯（1匹）、車中泊 1人" in t for t in shown)

    submit(desk, "避難者を検索", "にしきわ")  # hiragana finds the katakana reading
    desk = screen(app, shell, "/checkin/desk")
    assert "西岐波 ハナ" in texts(desk) and "1世帯" in texts(desk)
    submit(desk, "避難者を検索", "")

    click(screen(app, shell, "/checkin/desk"), "CSVで書き出す")
    desk = screen(app, shell, "/checkin/desk")
    [line] = texts([c for c in walk(desk) if getattr(c, "key", None) == "checkin-export"])
    path = line.removeprefix("書き出しました: ")
    assert Path(path).parent == tmp_path / "exports"  # beside the local store, not in the read-only region data
    csv_text = Path(path).read_text(encoding="utf-8")
    assert csv_text.startswith("shelter_id,capacity,persons,households") and "西岐波" not in csv_text
    assert ",1,1," in csv_text

    click(desk, "西岐波 ハナ さんの世帯をチェックアウト")  # asks first
    desk = screen(app, shell, "/checkin/desk")
    click(desk, "本当に 西岐波 ハナ さんの世帯をチェックアウトする（もう一度押す）")
    desk = screen(app, shell, "/checkin/desk")
    assert next(c for c in walk(desk) if getattr(c, "key", None) == "checkin-occupancy").value.startswith("在所 0人")


def test_desk_needs_staff_mode_and_can_change_shelter(app, shell):
    controls = screen(app, shell, "/checkin/desk")
    assert "受付画面はスタッフ用です。上のスイッチで受付モードにしてください。" in texts(controls)
    desk = staff(app, shell)
    submit(desk, "避難所を変更", "鵜の島")
    desk = screen(app, shell, "/checkin/desk")
    tile = next(c for c in walk(desk) if isinstance(c, ft.ListTile) and "鵜の島" in c.title.value)
    tile.on_click(None)
    desk = screen(app, shell, "/checkin/desk")
    assert any(t.startswith("避難所: 鵜の島") for t in texts(desk))


def test_survey_asks_for_missing_answers_then_queues_them(app, shell):
    controls = screen(app, shell, "/checkin/survey")
    assert not unlabelled(controls)
    click(controls, "回答を送る")
    assert errors(screen(app, shell, "/checkin/survey")) == ["「避難所での生活の満足度を教えてください。」にお答えください。"]
    controls = screen(app, shell, "/checkin/survey")
    groups = [c for c in walk(controls) if isinstance(c, ft.RadioGroup)]
    groups[0].on_change(Event("4"))  # satisfaction
    groups[1].on_change(Event("noise"))  # biggest problem
    groups[2].on_change(Event("2"))  # stress
    toggle(controls, "飲料水")
    toggle(controls, "携帯電話の充電")
    click(controls, "回答を送る")
    assert errors(screen(app, shell, "/checkin/survey")) == ["どの避難所についての回答か、避難所を選んでください。"]
    checkin_state(shell).survey_shelter = app.shelters.search("")[0].shelter.id
    click(screen(app, shell, "/checkin/survey"), "回答を送る")
    assert ("ご回答ありがとうございました。この端末に保存しました。市に送るには、ログインして避難者カードの同意をオンにしてください。"
            in texts(screen(app, shell, "/checkin/survey")))
    [response] = app.checkin.surveys.pending()
    assert response.answers == {"satisfaction": 4, "needs": ["water", "phone_charging"], "biggest_problem": "noise",
                                "stress": 2}


@pytest.mark.parametrize("lang", ["en", "ja-easy"])
def test_every_screen_is_translated(app, shell, lang):
    app.update_prefs(language=lang)
    checkin_state(shell).staff = True
    for route in ("/checkin", "/checkin/survey", "/checkin/desk", "/checkin/desk/paper"):
        shown = " ".join(texts(screen(app, shell, route)))
        assert "checkin." not in shown, route
    named(screen(app, shell, "/checkin"), ft.Switch, messages(lang)["checkin.staff_mode"])


def test_poster_token_is_a_shelter_poster_the_app_verifies(app, shell):
    from app.checkin import verify_poster
    svc = app.checkin
    shelter = next(h.shelter for h in app.shelters.search("鵜の島"))
    poster = verify_poster(svc.poster_token(shelter, now=1_700_000_000), svc.directory, 1_700_000_100)
    assert (poster.shelter_id, poster.municipality_code, poster.shelter_name) == (shelter.id, app.region.code, shelter.name)


def test_entrance_poster_read_by_the_resident_checks_in_then_out(app, shell):
    fill_card(app, shell)
    desk = staff(app, shell)
    click(desk, "入口に掲示するQRを表示")
    assert shell.routes[-1] == "/checkin/desk/poster"
    poster = screen(app, shell, "/checkin/desk/poster")
    assert not unlabelled(poster)
    image = next(c for c in walk(poster) if isinstance(c, ft.Image))
    assert image.semantics_label == "入口掲示用のチェックインQRコード" and image.width >= 300
    [text] = read_qr_texts(image.src)
    assert text.startswith("MS1:")

    toggle(screen(app, shell, "/checkin/desk"), "受付（スタッフ）モード", False)
    click(screen(app, shell, "/checkin"), "避難所でチェックイン（入口のQRを読み取る）")
    assert shell.routes[-1] == "/checkin/self"
    before = screen(app, shell, "/checkin/self")
    assert "いまはどの避難所にもチェックインしていません" in texts(before) and not unlabelled(before)
    assert "入口のQR画像でチェックイン" in {c.content for c in walk(before) if isinstance(c, BUTTONS)}
    me = ResidentCheckins(app.db, app.checkin.directory)
    card = app.checkin.card()
    me.check_in_image(image.src, card)  # what the upload button hands over
    during = texts(screen(app, shell, "/checkin/self"))
    assert any(t.endswith("にチェックイン中") for t in during)
    assert {"チェックインの記録はこの端末だけに保存されます（都市OSに接続していません）。", "この端末にある未送信の記録：1件"} <= set(during)
    assert "入口のQR画像でチェックアウト" in {c.content for c in walk(screen(app, shell, "/checkin/self")) if isinstance(c, BUTTONS)}
    me.check_out_image(image.src)
    assert "いまはどの避難所にもチェックインしていません" in texts(screen(app, shell, "/checkin/self"))


def test_an_empty_card_starts_from_the_household_and_stays_editable(app, shell):
    app.evacuation.save_household(Household(members=[HouseholdMember(AgeBand.ADULT, label="あなた"),
                                                      HouseholdMember(AgeBand.SENIOR, mobility=Mobility.WHEELCHAIR, label="祖母")]))
    controls = screen(app, shell, "/checkin")
    shown = texts(controls)
    assert "1人目（あなた）" in shown and "2人目（祖母）" in shown and not unlabelled(controls)
    assert any("マイハザードで入力した世帯（2人）" in t for t in shown)
    assert [f.value for f in walk(controls) if isinstance(f, ft.TextField) and f.label == "障がい（内容）"] == ["", "車いす"]
    type_into(controls, "氏名", "宇部 太郎")
    type_into(controls, "氏名", "宇部 ハナ", nth=1)
    type_into(controls, "障がい（内容）", "車いす（電動）", nth=1)
    click(controls, "保存")
    summary = texts(screen(app, shell, "/checkin"))
    assert "世帯 2人" in summary and any(t.startswith("宇部 ハナ") and "車いす（電動）" in t for t in summary)
