"""Readers for the public files a region is made of. They parse and validate; they never write.

Accepted inputs (any municipality can be loaded, not only the sample regions):
- GSI 指定緊急避難場所 / 指定避難所 as GeoJSON (as in ../shared/data) or as GSI's CSV download
  (UTF-8 with or without BOM, or Shift_JIS);
- 国土数値情報 P20 避難施設 as a zipped shapefile (capacity P20_005);
- an osmnx-style walking network: GeoJSON LineStrings with u, v, key, length and elevations;
- a 国土数値情報 N03 boundary polygon;
- the city's own district polygons (地区: 小学校区, 自治会, 地区防災計画の区域 …) as GeoJSON.

Every problem raises ``RegionFileError`` naming the file and the feature or line, whatever
the file holds (hostile files included): sizes are capped before anything is read or
decompressed, JSON nesting and number lengths are bounded, and any other failure of a
parser is reported as that file's error.
"""
from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapefile

from geo.models import RoadEdge, Shelter
from protocol.hazards import HazardType, ShelterKind

MAX_FILE_BYTES = 64 << 20  # a municipality's GeoJSON/CSV (Ube's walking network is 11 MB)
MAX_MEMBER_BYTES = 32 << 20  # one member of a zipped shapefile, decompressed (a prefecture's P20 is a few MB)
_MAX_NUMBER_CHARS = 40


class RegionFileError(ValueError):
    """A region file that cannot be read. ``where`` is 'feature 12', 'line 7', …"""

    def __init__(self, path: Path | str, where: str, problem: str):
        self.path, self.where, self.problem = Path(path), where, problem
        super().__init__(f"{Path(path).name}: {where}: {problem}")


@contextmanager
def named_errors(path: Path) -> Iterator[None]:
    """Whatever else a parser raises on a malformed file becomes that file's RegionFileError."""
    try:
        yield
    except RegionFileError:
        raise
    except (Exception, RecursionError) as exc:  # pyshp, csv, zipfile, json: hostile input finds them all
        raise RegionFileError(path, "file", f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})") from None


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refusing one larger than ``limit`` before reading it."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise RegionFileError(path, "file", f"{size} bytes is more than the {limit >> 20} MB a region file may have")
        return path.read_bytes()
    except OSError as exc:
        raise RegionFileError(path, "file", f"cannot be read ({exc.strerror or exc})") from None


@dataclass(frozen=True, slots=True)
class P20Site:
    name: str
    address: str
    lat: float
    lon: float
    capacity: int | None


_SAME_ADDRESS = {ShelterKind.EMERGENCY_SITE: "指定避難所との住所同一", ShelterKind.DESIGNATED_SHELTER: "指定緊急避難場所との住所同一"}


def read_shelters(path: str | Path) -> list[Shelter]:
    """Read a GSI shelter file (GeoJSON or CSV); the kind is told by its columns."""
    path = Path(path)
    with named_errors(path):
        return _read_shelters(path)


def _read_shelters(path: Path) -> list[Shelter]:
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _geojson_point_rows(path)
    shelters: list[Shelter] = []
    seen: set[str] = set()
    for where, props, lat, lon in rows:
        shelter = _shelter_from_row(path, where, props, lat, lon)
        if shelter.id in seen:
            raise RegionFileError(path, where, f"共通ID {shelter.id} appears twice")
        seen.add(shelter.id)
        shelters.append(shelter)
    if not shelters:
        raise RegionFileError(path, "file", "no shelters in file")
    return shelters


def _shelter_from_row(path: Path, where: str, props: dict[str, Any], lat: float, lon: float) -> Shelter:
    def text(key: str) -> str:
        value = props.get(key)
        return "" if value is None else str(value).strip()

    if not text("共通ID"):
        raise RegionFileError(path, where, "missing 共通ID")
    if not text("施設・場所名"):
        raise RegionFileError(path, where, "missing 施設・場所名 (name)")
    is_site = HazardType.FLOOD.gsi_column in props
    kind = ShelterKind.EMERGENCY_SITE if is_site else ShelterKind.DESIGNATED_SHELTER
    hazards: set[HazardType] = set()
    if is_site:
        for hazard in HazardType:
            flag = text(hazard.gsi_column)
            if flag not in ("", "0", "1"):
                raise RegionFileError(path, where, f"{hazard.gsi_column} must be 1 or empty, got {flag!r}")
            if flag == "1":
                hazards.add(hazard)
    return Shelter(
        id=text("共通ID"),
        kind=kind,
        name=text("施設・場所名"),
        address=text("住所"),
        lat=lat,
        lon=lon,
        hazards=frozenset(hazards),
        accepts=text("受入対象者") or None,
        note=text("備考"),
        same_address_as_other_kind=text(_SAME_ADDRESS[kind]) == "1",
        source=path.name,
        municipality=text("都道府県名及び市町村名"),
    )


def _positions(path: Path, where: str, positions: list) -> list[tuple[float, float]]:
    """GeoJSON positions as checked (longitude, latitude) pairs."""
    points = []
    for position in positions:
        if not isinstance(position, list) or len(position) < 2:
            raise RegionFileError(path, where, f"position must be [longitude, latitude], got {str(position)[:40]}")
        lat, lon = _coordinate(path, where, position[1], position[0])
        points.append((lon, lat))
    return points


def _coordinate(path: Path, where: str, lat: Any, lon: Any) -> tuple[float, float]:
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        raise RegionFileError(path, where, f"coordinates are not numbers: lat={lat!r} lon={lon!r}") from None
    # Japan lies within 20–46°N, 122–154°E; anything else is a swapped or broken coordinate.
    if not (20 <= lat_f <= 46 and 122 <= lon_f <= 154):
        raise RegionFileError(path, where, f"coordinates outside Japan: lat={lat_f} lon={lon_f}")
    return lat_f, lon_f


def _load_geojson(path: Path) -> list[dict[str, Any]]:
    raw = read_bytes(path)
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=_bounded(int), parse_float=_bounded(float), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise RegionFileError(path, f"byte {exc.start}", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RegionFileError(path, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}") from None
    except RecursionError:  # the C parser stops at Python's recursion limit: no stack overflow
        raise RegionFileError(path, "file", "JSON nests too deeply") from None
    except ValueError as exc:
        raise RegionFileError(path, "file", str(exc)) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise RegionFileError(path, "file", "not a GeoJSON FeatureCollection")
    return data["features"]


def _bounded(kind: type) -> Any:
    def parse(text: str) -> Any:
        if len(text) > _MAX_NUMBER_CHARS:
            raise ValueError(f"number {text[:20]}… has more than {_MAX_NUMBER_CHARS} characters")
        return kind(text)

    return parse


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _features(path: Path, geometry_types: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    for index, feature in enumerate(_load_geojson(path)):
        where = f"feature {index}"
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in geometry_types:
            raise RegionFileError(path, where, f"geometry must be {' or '.join(geometry_types)}")
        props = feature.get("properties")
        if not isinstance(props, dict):
            raise RegionFileError(path, where, "missing properties")
        yield where, props, geometry.get("coordinates")


def _geojson_point_rows(path: Path) -> Iterator[tuple[str, dict[str, Any], float, float]]:
    for where, props, coords in _features(path, ("Point",)):
        if not isinstance(coords, list) or len(coords) < 2:
            raise RegionFileError(path, where, "Point needs [longitude, latitude]")
        lat, lon = _coordinate(path, where, coords[1], coords[0])
        yield where, props, lat, lon


def _decode_csv(path: Path) -> str:
    raw = read_bytes(path)
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RegionFileError(path, "file", "text is neither UTF-8 nor Shift_JIS")


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any], float, float]]:
    reader = csv.DictReader(io.StringIO(_decode_csv(path)))
    missing = {"共通ID", "施設・場所名", "緯度", "経度"} - set(reader.fieldnames or ())
    if missing:
        raise RegionFileError(path, "line 1", f"header lacks {', '.join(sorted(missing))}")
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            raise RegionFileError(path, where, "more fields than the header has")
        lat, lon = _coordinate(path, where, row["緯度"], row["経度"])
        yield where, row, lat, lon


def read_zipped_shapefile(path: str | Path) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Records of a zipped shapefile (国土数値情報 style): ``(where, attributes, shape)``.

    The .cpg file names the text encoding; 国土数値情報 files without one are Shift_JIS.
    """
    path = Path(path)
    with named_errors(path):
        yield from _shapefile_records(path)


def _shapefile_records(path: Path) -> Iterator[tuple[str, dict[str, Any], Any]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise RegionFileError(path, "file", f"not a readable zip archive ({exc})") from None
    with archive:
        names = archive.namelist()
        stem = next((n[:-4] for n in names if n.lower().endswith(".shp")), None)
        if stem is None or f"{stem}.dbf" not in names:
            raise RegionFileError(path, "file", "zip holds no .shp with its .dbf")
        encoding = _member(path, archive, f"{stem}.cpg").decode().strip() if f"{stem}.cpg" in names else "cp932"
        try:
            reader = shapefile.Reader(
                shp=io.BytesIO(_member(path, archive, f"{stem}.shp")),
                dbf=io.BytesIO(_member(path, archive, f"{stem}.dbf")),
                encoding=encoding,
            )
            records = list(reader.iterShapeRecords())
        except RegionFileError:
            raise
        except Exception as exc:  # pyshp raises bare Exceptions for damaged files
            raise RegionFileError(path, f"{stem}.shp", f"damaged shapefile ({exc})") from None
    fields = [f[0] for f in reader.fields[1:]]
    for index, shape_record in enumerate(records):
        yield f"record {index}", dict(zip(fields, shape_record.record, strict=False)), shape_record.shape


def _member(path: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    """One member, decompressed no further than the cap (a zip bomb's header may lie about its size)."""
    chunks, size = [], 0
    with archive.open(name) as member:
        while chunk := member.read(1 << 20):  # in chunks: zipfile's one big read copies as it grows
            size += len(chunk)
            if size > MAX_MEMBER_BYTES:
                raise RegionFileError(path, name, f"decompresses to more than {MAX_MEMBER_BYTES >> 20} MB")
            chunks.append(chunk)
    return b"".join(chunks)


def read_p20_capacities(path: str | Path) -> list[P20Site]:
    """Read 国土数値情報 P20 避難施設 (zipped shapefile): name, address, point and capacity."""
    path = Path(path)
    with named_errors(path):
        return _read_p20(path)


def _read_p20(path: Path) -> list[P20Site]:
    sites = []
    for where, record, shape in read_zipped_shapefile(path):
        if "P20_002" not in record or "P20_005" not in record:
            raise RegionFileError(path, where, "not P20 data: no P20_002/P20_005 fields")
        if not shape.points:
            raise RegionFileError(path, where, "record has no point")
        lon, lat = shape.points[0]
        lat, lon = _coordinate(path, where, lat, lon)
        capacity = record.get("P20_005")
        sites.append(
            P20Site(
                name=str(record["P20_002"]).strip(),
                address=str(record.get("P20_003") or "").strip(),
                lat=lat,
                lon=lon,
                capacity=int(capacity) if isinstance(capacity, (int, float)) and math.isfinite(capacity) and 0 < capacity < 10**7 else None,
            )
        )
    return sites


def read_road_edges(path: str | Path) -> Iterator[RoadEdge]:
    """Stream the directed edges of an osmnx-style walking network."""
    path = Path(path)
    with named_errors(path):
        yield from _road_edges(path)


def _road_edges(path: Path) -> Iterator[RoadEdge]:
    for where, props, coords in _features(path, ("LineString",)):
        try:
            u, v, key = int(props["u"]), int(props["v"]), int(props.get("key") or 0)
            length = float(props["length"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise RegionFileError(path, where, "edge needs integer u, v (and key) and a numeric length") from None
        if not all(0 <= n < 2**63 for n in (u, v, key)):
            raise RegionFileError(path, where, "u, v and key must be node numbers in 0..2^63-1")
        if not (0 <= length < math.inf):
            raise RegionFileError(path, where, f"length must be a finite number of metres, got {length}")
        if not isinstance(coords, list) or len(coords) < 2:
            raise RegionFileError(path, where, "LineString needs at least two positions")
        points = _positions(path, where, coords)
        yield RoadEdge(
            u=u,
            v=v,
            key=key,
            length_m=length,
            highway=str(props.get("highway") or ""),
            name=str(props.get("name") or ""),
            elev_u=_optional_float(props.get("elev_start_m")),
            elev_v=_optional_float(props.get("elev_end_m")),
            coords=points,
        )


def _optional_float(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def read_boundary(path: str | Path) -> tuple[str, dict[str, Any]]:
    """Read a 国土数値情報 N03 boundary: (municipality name, GeoJSON geometry)."""
    path = Path(path)
    with named_errors(path):
        return _boundary(path)


def _boundary(path: Path) -> tuple[str, dict[str, Any]]:
    features = list(_features(path, ("Polygon", "MultiPolygon")))
    if not features:
        raise RegionFileError(path, "file", "no boundary polygon")
    _, props, coords = features[0]
    name = str(props.get("N03_004") or props.get("name") or "")
    geometry_type = "MultiPolygon" if _depth(coords) == 4 else "Polygon"
    return name, {"type": geometry_type, "coordinates": coords}


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth



DISTRICT_NAME_KEYS = ("name", "名称", "地区名")  # the first a feature has names its district
Polygon = list[list[tuple[float, float]]]  # outer ring then holes, (lon, lat)


def read_districts(path: str | Path) -> dict[str, list[Polygon]]:
    """The city's district polygons: {name: polygons}. Features with the same name are one district."""
    path = Path(path)
    with named_errors(path):
        return _districts(path)


def _districts(path: Path) -> dict[str, list[Polygon]]:
    districts: dict[str, list[Polygon]] = {}
    for where, props, coords in _features(path, ("Polygon", "MultiPolygon")):
        name = next((str(props[k]).strip() for k in DISTRICT_NAME_KEYS if str(props.get(k) or "").strip()), "")
        if not name:
            raise RegionFileError(path, where, f"a district needs a name ({' or '.join(DISTRICT_NAME_KEYS)})")
        polygons = coords if _depth(coords) == 4 else [coords]
        districts.setdefault(name[:80], []).extend(_polygon(path, where, p) for p in polygons)
    if not districts:
        raise RegionFileError(path, "file", "no district polygons")
    return districts


def _polygon(path: Path, where: str, rings: Any) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise RegionFileError(path, where, "a polygon needs an outer ring")
    result = []
    for ring in rings:
        if not isinstance(ring, list) or len(ring) < 4:
            raise RegionFileError(path, where, "a ring needs at least four positions")
        points = _positions(path, where, ring)
        result.append(points)
    return result
