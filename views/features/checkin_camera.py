"""Desk scanning with the camera (flet-camera; its Flutter side is in the prebuilt web client,
checked in Chromium). Frames are taken a few times a second and decoded in Python until one
holds an evacuee QR; then the camera stops, so the same code is not read twice."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import flet as ft
import flet_camera as fc

from app.checkin import CheckinError, NoQrFound, ShelterDesk
from app.state import Mamori
from views.features.checkin_form import error_text

log = logging.getLogger(__name__)
SCAN_FOR_S = 30  # then stop: a camera left running drains a tablet's battery
RETRY_S = 0.2


def camera_block(app: Mamori, render: Callable[[], None], state: dict, desk: ShelterDesk) -> list[ft.Control]:
    t = app.t

    async def start(_: ft.Event) -> None:
        state["camera_on"] = True
        state["camera"] = fc.Camera(height=260, preview_enabled=True)
        render()
        try:
            await _scan(app, state, desk, state["camera"])
        except Exception as exc:  # noqa: BLE001 - no camera, permission refused, a browser without camera support
            log.info("camera unavailable: %s", type(exc).__name__)
            state["desk_result"] = ("error", t("checkin.desk.camera_failed", error=type(exc).__name__))
        state["camera_on"] = False
        render()

    def stop(_: ft.Event) -> None:
        state["camera_on"] = False

    if not state.get("camera_on"):
        return [ft.OutlinedButton(t("checkin.desk.camera"), icon=ft.Icons.PHOTO_CAMERA, on_click=start, height=56)]
    return [
        state["camera"],
        ft.Text(t("checkin.desk.camera_hold"), weight=ft.FontWeight.BOLD),
        ft.OutlinedButton(t("checkin.desk.camera_stop"), icon=ft.Icons.STOP, on_click=stop),
    ]


async def _scan(app: Mamori, state: dict, desk: ShelterDesk, camera: fc.Camera) -> None:
    cameras = await camera.get_available_cameras()
    if not cameras:
        state["desk_result"] = ("error", app.t("checkin.desk.no_camera"))
        return
    await camera.initialize(cameras[0], fc.ResolutionPreset.MEDIUM, enable_audio=False)
    deadline = time.monotonic() + SCAN_FOR_S
    while state.get("camera_on"):
        if time.monotonic() > deadline:
            state["desk_result"] = ("error", app.t("checkin.desk.camera_timeout"))
            return
        frame = await camera.take_picture()
        try:
            state["desk_result"] = ("ok", desk.check_in_image(frame))
            return
        except NoQrFound:
            await asyncio.sleep(RETRY_S)
        except CheckinError as exc:
            state["desk_result"] = ("error", error_text(app, exc))
            return
