"""What a phone build installs: the client's dependency closure has compiled code only where Flet's
mobile index has a wheel (../shared/MOBILE.md), and the client starts without the platform's
server packages."""
from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
MOBILE = ROOT.parent / "shared" / "MOBILE.md"  # the data dir convention: ../shared beside the checkout
COMPILED = (".so", ".pyd", ".dylib")
SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "re2")


def mobile_wheels() -> set[str]:
    if not MOBILE.is_file():
        pytest.skip(f"{MOBILE} is absent: no list of the mobile index's binary packages to check against")
    text = MOBILE.read_text(encoding="utf-8")
    listed = re.search(r"Binary packages with a phone recipe.*?:\n\n(.+?)\n\n", text, re.S)
    assert listed, f"{MOBILE} no longer has its list of binary packages"
    return {canonicalize_name(name) for name in listed.group(1).split()}


def client_closure() -> dict[str, md.Distribution]:
    """``mamori`` without extras and everything it requires, recursively, markers evaluated here."""
    found: dict[str, md.Distribution] = {}
    todo = [(Requirement(r), ("",)) for r in md.requires("mamori") or []]
    seen_extras: set[tuple[str, str]] = set()
    while todo:
        req, active = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in active):
            continue
        name = canonicalize_name(req.name)
        wanted = {"", *req.extras} - {e for n, e in seen_extras if n == name}
        if name in found and not wanted:
            continue
        found[name] = md.distribution(req.name)
        seen_extras |= {(name, e) for e in wanted}
        todo += [(Requirement(r), tuple(wanted)) for r in found[name].requires or []]
    return found


def compiled_files(dist: md.Distribution) -> list[str]:
    return [str(f) for f in dist.files or [] if str(f).endswith(COMPILED) or ".so." in f.name]


def test_client_closure_has_compiled_code_only_where_phones_have_wheels():
    allowed = mobile_wheels()
    closure = client_closure()
    compiled = {name: compiled_files(dist) for name, dist in sorted(closure.items())}
    compiled = {name: files for name, files in compiled.items() if files}
    missing = {name: files[:2] for name, files in compiled.items() if name not in allowed}
    print(f"client closure: {len(closure)} distributions, compiled: {', '.join(sorted(compiled))}")
    assert not missing, f"compiled distributions without a phone wheel in {MOBILE.name}: {missing}"
    assert not set(closure) & {canonicalize_name(p) for p in ("fastapi", "uvicorn", "sqlalchemy", "psycopg", "google-re2")}


def test_the_check_sees_a_compiled_package_outside_the_list():
    """The same check fails for the platform's closure (psycopg-binary, uvloop...): it can fail."""
    allowed = mobile_wheels()
    psycopg = md.distribution("psycopg-binary")
    assert compiled_files(psycopg) and canonicalize_name("psycopg-binary") not in allowed


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: the client must not need it")
sys.meta_path.insert(0, Block())
import importlib, pkgutil
import main
for package in ("app", "views", "offline", "geo", "protocol"):
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(info.name)
print("imported", len([m for m in sys.modules if m.split(".")[0] in ("app", "views", "offline", "geo", "protocol")]), "client modules")
"""


def test_client_imports_with_the_platform_server_packages_blocked():
    run = subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=SERVER_PACKAGES)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "client modules" in run.stdout


def test_the_blocker_blocks():
    script = BLOCKER.format(blocked=SERVER_PACKAGES).replace("import main\n", "import fastapi\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode != 0 and "fastapi is blocked" in run.stderr
