"""Malformed region files of every kind, and a run that imports each into a real store.

``python -m tests.region_fuzz DATA_DIR WORK_DIR COUNT`` writes COUNT files per kind (shelter
GeoJSON and CSV, P20 zip, roads, boundary, hazard), imports each over a store holding good
data, and prints one JSON line: files tried, outcomes, failures (anything but a
``RegionFileError`` naming the file, or changed data after one) and the peak RSS in MB.
Run in a subprocess so the peak memory is this run's alone.
"""
from __future__ import annotations

import io
import json
import random
import resource
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geo.hazard_import import import_hazard_file
from geo.region_import import import_boundary, import_roads, import_shelters
from geo.regionfiles import RegionFileError, read_p20_capacities
from offline.store import open_store
from protocol.hazards import ShelterKind

REGION = "352021"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOSTILE_VALUES: list[Any] = [
    float("nan"), float("inf"), -1, 0, 10**400, "9" * 5000, "", None, [], {}, [1], [[]], "\ud800", "x" * 200_000,
    True, "1e999", -1e308, [131.2], [[131.2, 33.9]], {"type": "Point"}, "NaN", "\x00", 2**63,
]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _mutate_json(rng: random.Random, text: str) -> bytes:
    """A structurally hostile variant: a hostile value somewhere, a key gone, or the text cut/flipped."""
    choice = rng.randrange(6)
    if choice == 0:
        return _mutate_bytes(rng, text.encode())
    data = json.loads(text)
    if choice == 1:
        return _deep(rng.choice([1000, 100_000])).encode()
    nodes: list[tuple[Any, Any]] = []
    _collect(data, nodes)
    parent, key = rng.choice(nodes)
    if choice == 2 and isinstance(parent, dict):
        parent.pop(key, None)
    else:
        parent[key] = rng.choice(HOSTILE_VALUES)
    raw = json.dumps(data, ensure_ascii=False, allow_nan=True)
    if rng.random() < 0.1:
        raw = raw.replace('"' + "9" * 5000 + '"', "9" * 5000)  # a 5,000-digit JSON integer
    return raw.encode("utf-8", "surrogatepass")


def _collect(node: Any, out: list[tuple[Any, Any]], depth: int = 0) -> None:
    if depth > 8:
        return
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append((node, key))
        _collect(value, out, depth + 1)


def _mutate_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(3)
        at = rng.randrange(max(1, len(data)))
        if op == 0:
            data[at:at + 1] = bytes([rng.randrange(256)])
        elif op == 1:
            del data[at:]
        else:
            data[at:at] = rng.choice([b"\x00", b"\xff\xfe", b'"', b",", b"[", b"}", rng.randbytes(16)])
    return bytes(data)


def _mutate_csv(rng: random.Random, text: str) -> bytes:
    lines = text.splitlines()
    choice = rng.randrange(5)
    if choice == 0:
        return _mutate_bytes(rng, text.encode())
    if choice == 1:  # a field larger than csv's limit
        lines[1] = lines[1].replace(",", ',"' + "x" * 200_000 + '",', 1)
    elif choice == 2:
        row = lines[rng.randrange(1, len(lines))].split(",")
        row[rng.randrange(len(row))] = str(rng.choice(HOSTILE_VALUES))
        lines[1] = ",".join(row)
    elif choice == 3:
        lines[0] = lines[0].replace("緯度", "lat")
    else:
        lines.append(",".join(["1"] * 40))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def _zip_with(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_bomb(member_mb: int = 1024) -> bytes:
    """A small zip whose .shp decompresses to ``member_mb`` MB of zeros (and a header that says so)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("P20.shp", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(member_mb):
                member.write(chunk)
        archive.writestr("P20.dbf", b"\x03")
    return out.getvalue()


def _mutate_zip(rng: random.Random, raw: bytes, bomb: bytes) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return _mutate_bytes(rng, raw)
    if choice == 1:
        return bomb
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    name = rng.choice(sorted(members))
    if choice == 2:
        members[name] = _mutate_bytes(rng, members[name])
        return _zip_with(members)
    damaged = bytearray(_zip_with(members))  # a stored member whose bytes no longer match its CRC
    at = damaged.find(b"PK\x01\x02")
    for _i in range(rng.randint(1, 4)):
        pos = rng.randrange(40, max(41, at - 1))
        damaged[pos] ^= 0xFF
    return bytes(damaged)


def base_files(data_dir: Path) -> dict[str, bytes]:
    ube = data_dir / "regions" / "ube-352021"
    sites = json.loads((ube / "gsi_emergency_sites.geojson").read_text(encoding="utf-8"))
    sites["features"] = sites["features"][:15]
    roads = json.loads((ube / "roads_walk.geojson").read_text(encoding="utf-8"))
    roads["features"] = roads["features"][:40]
    return {
        "sites": json.dumps(sites, ensure_ascii=False).encode(),
        "csv": (FIXTURES / "regions" / "gsi_sites_sample.csv").read_bytes().replace(b"E99999", b"E35202"),
        "p20": (ube / "shelters_p20_ksj.zip").read_bytes(),
        "roads": json.dumps(roads, ensure_ascii=False).encode(),
        "boundary": (data_dir / "regions" / "aizuwakamatsu-072028" / "boundary_n03.geojson").read_bytes(),
        "hazard": (FIXTURES / "hazard" / "a31_flood.geojson").read_bytes(),
    }


def _snapshot(db: Any) -> tuple[int, ...]:
    tables = ("shelter", "road_edge", "boundary", "dataset", "hazard_area")
    return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables if t in db.table_names())


def _peak_rss_kb() -> int:
    """This process's own peak RSS. Linux carries ru_maxrss across exec, so a process started
    from a big pytest process reports the parent's size; VmHWM belongs to this image alone."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(data_dir: Path, work: Path, count: int, seed: int = 15) -> dict[str, Any]:
    rng = random.Random(seed)
    base = base_files(data_dir)
    bomb = zip_bomb()
    db = open_store(work / "m.sqlite")
    p20 = work / "good_p20.zip"
    p20.write_bytes(base["p20"])
    good = {"sites": work / "good_sites.geojson", "roads": work / "good_roads.geojson"}
    good["sites"].write_bytes(base["sites"])
    good["roads"].write_bytes(base["roads"])
    import_shelters(db, REGION, ShelterKind.EMERGENCY_SITE, good["sites"])
    import_roads(db, REGION, good["roads"])
    importers: dict[str, tuple[str, Callable[[Path], Any]]] = {
        "sites": (".geojson", lambda f: import_shelters(db, REGION, ShelterKind.EMERGENCY_SITE, f)),
        "csv": (".csv", lambda f: import_shelters(db, REGION, ShelterKind.EMERGENCY_SITE, f)),
        "p20": (".zip", lambda f: import_shelters(db, REGION, ShelterKind.EMERGENCY_SITE, good["sites"], read_p20_capacities(f), f)),
        "roads": (".geojson", lambda f: import_roads(db, REGION, f)),
        "boundary": (".geojson", lambda f: import_boundary(db, REGION, f)),
        "hazard": (".geojson", lambda f: import_hazard_file(db, REGION, f)),
    }
    outcomes = {"imported": 0, "region_file_error": 0}
    failures: list[str] = []
    tried = 0
    for kind, (suffix, importer) in importers.items():
        for n in range(count):
            if kind == "csv":
                raw = _mutate_csv(rng, base[kind].decode("utf-8-sig"))
            elif kind == "p20":
                raw = _mutate_zip(rng, base[kind], bomb)
            else:
                raw = _mutate_json(rng, base[kind].decode("utf-8"))
            path = work / f"{kind}-{n}{suffix}"
            path.write_bytes(raw)
            before = _snapshot(db)
            tried += 1
            try:
                importer(path)
                outcomes["imported"] += 1
            except RegionFileError as err:
                outcomes["region_file_error"] += 1
                if err.path != path or _snapshot(db) != before:
                    failures.append(f"{path.name}: error names {err.path.name} or data changed: {err}")
            except Exception as exc:  # the finding this run exists to catch
                failures.append(f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}")
            path.unlink()
    db.conn.close()
    peak_mb = _peak_rss_kb() / 1024
    return {"tried": tried, "outcomes": outcomes, "failures": failures[:20], "failure_count": len(failures), "peak_mb": round(peak_mb, 1)}


if __name__ == "__main__":
    target = Path(sys.argv[2])
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    print(json.dumps(run(Path(sys.argv[1]), target, int(sys.argv[3]))))
