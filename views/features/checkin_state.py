"""What the check-in screens remember while the page is open (one per page, typed)."""
from __future__ import annotations

from dataclasses import dataclass, field

from app.checkin import CardForm, CheckinService, EvacueeQr
from views.features.qr_reader import Scanner

Notice = tuple[str, str]  # ("ok" | "error", text)


@dataclass
class CheckinScreen:
    staff: bool = False  # 受付モード switched on (only effective for staff accounts)
    connected: CheckinService | None = None  # the service whose roles and keys were last asked for
    # the resident's card and QR
    editing: bool = False
    form: CardForm | None = None
    from_household: bool = False  # the open form started from My Hazard's household (say so, once editing starts)
    message: Notice | None = None  # shown once, on the next render
    qr: EvacueeQr | None = None
    qr_error: str | None = None
    # self check-in by the entrance poster
    self_scan: Scanner = field(default_factory=Scanner)
    # the shelter-life survey
    survey_answers: dict[str, object] = field(default_factory=dict)
    survey_shelter: str | None = None
    survey_query: str = ""
    # the desk
    desk_shelter: str | None = None
    desk_query: str = ""
    desk_scan: Scanner = field(default_factory=Scanner)  # its result is the desk's last result (kept on screen)
    desk_search: str = ""
    desk_confirm_out: str | None = None  # the evacuee whose check-out waits for the second tap
    auto_synced: str | None = None  # the shelter whose desk was last opened (synced once per shelter)
    survey: dict | None = None  # the platform's survey summary for the desk's shelter
    export: Notice | None = None
    published: Notice | None = None
    paper: CardForm = field(default_factory=CardForm)
    paper_error: str | None = None
    poster: tuple[str, str] | None = None  # (shelter id, the poster's QR text): one per shelter while open
