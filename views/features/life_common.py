"""What the Life screens share: one redraw at a time."""
from __future__ import annotations

import threading

_REDRAW = threading.Lock()


def redraw(shell) -> None:
    """Render under a lock: handlers and background threads run concurrently, and an older
    render sent after a newer one would show a choice the resident just made as undone."""
    with _REDRAW:
        shell.render()
