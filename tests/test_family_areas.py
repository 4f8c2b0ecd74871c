"""The HQ's areas: the city's own districts when its region folder supplies them, else the
designated shelters' catchments; answers counted per area and alerts to chosen ones."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from app.family import Answer, Place, SafetyStatus, alert_entity, alert_from_entity, area_polygon, catchments, counts_by_area, hq_areas
from geo.hazards import point_in_polygon
from geo.region_import import datasets
from geo.regionfiles import RegionFileError, read_districts
from protocol.hazards import ShelterKind
from tests.conftest import FIXTURES, copy_region

DISTRICTS = FIXTURES / "regions" / "districts_sample.geojson"


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
    areas = hq_areas({}, [(s.name, s.lat, s.lon) for s in shelters])
    assert areas.kind == "catchment" and set(areas.polygons) == set(cells)
    alert = alert_from_entity(alert_entity("area-1", "352021", hazard="flood", level=4, headline="", issued_at=now,
                                           expires_at=now + timedelta(hours=1), polygon=area_polygon(areas, [chosen.name])))
    assert alert.covers(Place(chosen.lat, chosen.lon)) and not alert.covers(Place(other.lat, other.lon))
    assert area_polygon(areas, []) is None


def test_district_file_is_read_with_names_from_name_or_meisho(tmp_path) -> None:
    districts = read_districts(DISTRICTS)
    assert sorted(districts) == ["東地区", "西地区"]
    assert (len(districts["東地区"]), len(districts["西地区"])) == (2, 1)  # the MultiPolygon's two parts
    data = json.loads(DISTRICTS.read_text())
    del data["features"][0]["properties"]["name"]
    (tmp_path / "districts.geojson").write_text(json.dumps(data))
    with pytest.raises(RegionFileError, match="feature 0: a district needs a name"):
        read_districts(tmp_path / "districts.geojson")


def _answer(person: str, lat: float, lon: float, status: str = "safe") -> Answer:
    return Answer(id=person, person=person, status=SafetyStatus(status), observed_at=datetime.now(UTC), reported_by=person,
                  lat=lat, lon=lon)


def test_supplied_districts_are_the_hq_areas_for_counts_and_alerts(app, ube, tmp_path) -> None:
    assert app.family.hq_areas().kind == "catchment"  # nothing supplied: the shelters' catchments
    region = copy_region(ube, tmp_path / "data", skip=("roads_walk.geojson",))
    shutil.copy(DISTRICTS, region.folder / "districts.geojson")
    app.region = region
    app.ensure_imported()  # a file supplied after the first import is picked up at the next start
    assert "districts" in {d.dataset for d in datasets(app.db, ube.code)}
    areas = app.family.hq_areas()
    assert (areas.kind, sorted(areas.polygons)) == ("district", ["東地区", "西地区"])
    answers = [_answer("w", 33.95, 131.22), _answer("e1", 33.95, 131.27, "needHelp"), _answer("e2", 33.92, 131.32),
               _answer("far", 34.2, 131.0)]
    counts = counts_by_area(answers, areas.polygons)
    assert (counts["西地区"]["safe"], counts["東地区"]["needHelp"], counts["東地区"]["safe"], counts["outside"]["safe"]) == (1, 1, 1, 1)
    now = datetime.now(UTC)
    alert = alert_from_entity(alert_entity("district-1", "352021", hazard="flood", level=4, headline="", issued_at=now,
                                           expires_at=now + timedelta(hours=1), polygon=area_polygon(areas, ["東地区"])))
    assert alert.covers(Place(33.92, 131.32)) and alert.covers(Place(33.95, 131.27)) and not alert.covers(Place(33.95, 131.22))
