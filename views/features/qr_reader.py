"""Reading a QR with the camera or from a picture: the desk (evacuee QR), residents (the shelter
entrance poster, a family invite). flet-camera's Flutter side is in the prebuilt web client, checked
in Chromium. Frames are taken a few times a second and decoded in Python until one holds a QR;
then the camera stops, so the same code is not read twice."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import flet as ft
import flet_camera as fc

from app.checkin import CheckinError, NoQrFound
from app.state import Mamori
from views.features.checkin_form import error_text

log = logging.getLogger(__name__)
SCAN_FOR_S = 30  # then stop: a camera left running drains a tablet's battery
RETRY_S = 0.2

# Reads one picture: returns what to show, raises NoQrFound to try the next frame, or another CheckinError.
Reader = Callable[[bytes], object]
Outcome = tuple[str, object]  # ("ok", what ``read`` returned) or ("error", message)


@dataclass
class Scanner:
    """One place that reads QR codes: its file picker, its live camera, and the last outcome."""

    picker: ft.FilePicker | None = None
    camera: fc.Camera | None = None
    camera_on: bool = False
    result: Outcome | None = None

    def take(self) -> Outcome | None:
        """The last outcome, once (a message shows on the render after the scan)."""
        result, self.result = self.result, None
        return result


def scan_buttons(app: Mamori, render: Callable[[], None], scanner: Scanner, read: Reader,
                 upload_label: str) -> list[ft.Control]:
    """"Load a QR image" and "scan with camera"; the outcome goes to ``scanner.result``."""
    # Made with the screen, not on the click: the client must have mounted it before it is asked to pick.
    if scanner.picker is None:
        scanner.picker = ft.FilePicker()
    picker = scanner.picker

    async def upload(_: ft.Event) -> None:
        # A slow browser can blur the window before the file arrives; that must not count as "cancel".
        files = await picker.pick_files(file_type=ft.FilePickerFileType.IMAGE, with_data=True,
                                        cancel_upload_on_window_blur=False)
        if files and files[0].bytes:
            scanner.result = _outcome(app, read, files[0].bytes)
            render()

    return [ft.FilledButton(upload_label, icon=ft.Icons.UPLOAD_FILE, on_click=upload, height=56),
            *_camera_block(app, render, scanner, read)]


def _outcome(app: Mamori, read: Reader, picture: bytes) -> Outcome:
    try:
        return "ok", read(picture)
    except CheckinError as exc:
        return "error", error_text(app, exc)


def _camera_block(app: Mamori, render: Callable[[], None], scanner: Scanner, read: Reader) -> list[ft.Control]:
    t = app.t

    async def start(_: ft.Event) -> None:
        scanner.camera_on = True
        scanner.camera = camera = fc.Camera(height=260, preview_enabled=True, key="qr-camera")
        render()
        try:
            scanner.result = await _scan(app, scanner, read, camera)
        except Exception as exc:
            log.info("camera unavailable: %s", type(exc).__name__)
            scanner.result = ("error", t("qr.camera_failed", error=type(exc).__name__))
        scanner.camera_on = False
        render()

    def stop(_: ft.Event) -> None:
        scanner.camera_on = False

    if not scanner.camera_on or scanner.camera is None:
        return [ft.OutlinedButton(t("qr.camera"), icon=ft.Icons.PHOTO_CAMERA, on_click=start, height=56)]
    return [
        scanner.camera,
        ft.Text(t("qr.camera_hold"), weight=ft.FontWeight.BOLD),
        ft.OutlinedButton(t("qr.camera_stop"), icon=ft.Icons.STOP, on_click=stop),
    ]


async def _scan(app: Mamori, scanner: Scanner, read: Reader, camera: fc.Camera) -> Outcome | None:
    cameras = await camera.get_available_cameras()
    if not cameras:
        return "error", app.t("qr.no_camera")
    await camera.initialize(cameras[0], fc.ResolutionPreset.MEDIUM, enable_audio=False)
    deadline = time.monotonic() + SCAN_FOR_S
    frames = 0
    while scanner.camera_on:
        if time.monotonic() > deadline:
            # Says why a scan gave up (no frames at all vs frames without a readable code).
            log.info("camera: %d frames in %d s, none held a readable QR", frames, SCAN_FOR_S)
            return "error", app.t("qr.camera_timeout")
        frame = await camera.take_picture()
        frames += 1
        try:
            return "ok", read(frame)
        except NoQrFound:
            await asyncio.sleep(RETRY_S)
        except CheckinError as exc:
            return "error", error_text(app, exc)
    return None  # stopped by staff
