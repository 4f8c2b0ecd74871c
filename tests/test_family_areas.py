"""Designated shelters' catchments (the HQ's default areas) and alerts to chosen ones."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.family import Place, alert_entity, alert_from_entity, area_polygon, catchments
from geo.hazards import point_in_polygon
from protocol.hazards import ShelterKind


def test_every_point_lies_in_the_catchment_of_its_nearest_designated_shelter(app) -> None:
    shelters = [h.shelter for h in app.shelters.search(kind=ShelterKind.DESIGNATED_SHELTER)]
    cells = catchments([(s.name, s.lat, s.lon) for s in shelters])
    assert len(cells) >= len({s.name for s in shelters}) * 0.9
    for lat, lon in ((33.9513, 131.2470), (33.99, 131.22), (33.93, 131.30)):
        nearest = min(shelters, key=lambda s: (s.lat - lat) ** 2 + ((s.lon - lon) * 0.83) ** 2)
        inside = [name for name, ring in cells.items() if point_in_polygon(lon, lat, [ring])]
        assert nearest.name in inside


def test_an_alert_for_chosen_catchments_covers_them_and_not_the_rest(app) -> None:
    shelters = [h.shelter for h in app.shelters.search(kind=ShelterKind.DESIGNATED_SHELTER)]
    cells = catchments([(s.name, s.lat, s.lon) for s in shelters])
    chosen, other = shelters[0], next(s for s in shelters if s.name != shelters[0].name and s.name in cells)
    now = datetime.now(UTC)
    alert = alert_from_entity(alert_entity("area-1", "352021", hazard="flood", level=4, headline="", issued_at=now,
                                           expires_at=now + timedelta(hours=1), polygon=area_polygon(cells, [chosen.name])))
    assert alert.covers(Place(chosen.lat, chosen.lon)) and not alert.covers(Place(other.lat, other.lon))
    assert area_polygon(cells, []) is None
