"""Tests of viz.assets (no network: a fake ``npm`` stands in for the registry)."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("solara")

from viz import assets  # noqa: E402
from viz.assets import MARKER, Asset, AssetError  # noqa: E402

# what solara 1.64.1's page requests (checked in a real browser against the server log)
KNOWN_1_64_1 = {
    "@widgetti/solara-vuetify-app": {"10.1.1"},
    "@widgetti/solara-vuetify3-app": {"5.2.0"},
    "requirejs": {"2.3.6"},
    "font-awesome": {"4.5.0"},
    "@widgetti/vue-grid-layout": {"2.3.13-alpha.2"},
    "vega": {"5"},
    "vega-lite": {"5"},
    "vega-embed": {"6"},
    "mermaid": {"10.8.0"},
    "katex": {"0.16.9"},
}


def test_versions_come_from_installed_solara():
    import solara

    found = assets.discover_cdn_specs()
    for name in assets.REQUIRED_PACKAGES:
        assert found.get(name), f"{name} not referenced by solara {solara.__version__}"
    template = (Path(solara.__file__).parent / "server/templates/solara.html.j2").read_text()
    for name in ("@widgetti/solara-vuetify-app", "@widgetti/solara-vuetify3-app", "requirejs"):
        for spec in found[name]:
            assert f"{name}@{spec}/" in template
    if solara.__version__ == "1.64.1":
        assert {n: found[n] for n in KNOWN_1_64_1} == KNOWN_1_64_1


def test_required_assets_lists_each_package_once_per_spec():
    listed = assets.required_assets()
    assert {a.name for a in listed} == set(assets.REQUIRED_PACKAGES)
    assert len({a.key for a in listed}) == len(listed)
    assert {a.name for a in assets.required_assets(include_all=True)} == set(assets.discover_cdn_specs())


# ---------------------------------------------------------------- a fake npm

FAKE_NPM = r'''#!{python}
import io, json, os, sys, tarfile
log = os.environ["FAKE_NPM_LOG"]
with open(log, "a") as fh:
    fh.write(" ".join(sys.argv[1:]) + "\n")
if os.environ.get("FAKE_NPM_FAIL"):
    sys.stderr.write(os.environ["FAKE_NPM_FAIL"] + "\n")
    sys.exit(1)
args = sys.argv[1:]
assert args[0] == "pack"
dest = args[args.index("--pack-destination") + 1]
records = []
for spec in args[1:]:
    if spec.startswith("--"):
        break
    name, _, version = spec.rpartition("@")
    version = version if version[0].isdigit() and version.count(".") >= 2 else version + ".9.9"
    filename = name.lstrip("@").replace("/", "-") + "-" + version + ".tgz"
    with tarfile.open(os.path.join(dest, filename), "w:gz") as tar:
        for path, data in (("package/package.json", json.dumps({{"name": name}})), ("package/dist/x.js", "// " + spec)):
            info = tarfile.TarInfo(path)
            raw = data.encode()
            info.size, info.mode = len(raw), 0o600
            tar.addfile(info, io.BytesIO(raw))
    records.append({{"filename": filename, "version": version, "integrity": "sha512-fake"}})
print(json.dumps(records))
'''


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(0o755)
    log = tmp_path / "npm.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NPM_LOG", str(log))
    return log


def _pack_calls(log: Path) -> list[str]:
    return [ln for ln in log.read_text().splitlines() if ln.startswith("pack")]


def test_ensure_assets_downloads_once_and_lays_out_the_cdn_paths(fake_npm, tmp_path):
    cache = tmp_path / "cache"
    assert assets.ensure_assets(cache) == cache.resolve()
    for asset in assets.required_assets():
        folder = cache / asset.key
        assert (folder / "dist" / "x.js").read_text() == f"// {asset.key}"
        meta = json.loads((folder / MARKER).read_text())
        assert meta["name"] == asset.name and meta["spec"] == asset.spec
        # readable by another user even though the tarball said 0600
        assert stat.S_IMODE((folder / "dist" / "x.js").stat().st_mode) & 0o044 == 0o044
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert (cache / "@widgetti").is_dir()  # a scoped name nests, as in the url
    assert len(_pack_calls(fake_npm)) == 1

    assets.ensure_assets(cache)  # idempotent: nothing to do, npm not called
    assert len(_pack_calls(fake_npm)) == 1
    assert assets.main(["--check", "--dir", str(cache)]) == 0


def test_ensure_assets_refetches_only_what_is_missing(fake_npm, tmp_path):
    cache = tmp_path / "cache"
    assets.ensure_assets(cache)
    victim = assets.required_assets()[0]
    (cache / victim.key / MARKER).unlink()  # e.g. an interrupted unpack
    assert assets.missing_assets(cache) == [victim]
    assets.ensure_assets(cache)
    calls = _pack_calls(fake_npm)
    assert len(calls) == 2 and calls[1].split()[1:2] == [victim.key]
    assert assets.missing_assets(cache) == []


def test_check_reports_missing(tmp_path, capsys):
    assert assets.main(["--check", "--dir", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert "missing  requirejs@" in out and "run python -m viz.assets" in out


def test_unreachable_registry_is_one_clear_line(fake_npm, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_NPM_FAIL", "npm error code ECONNREFUSED\nnpm error errno ECONNREFUSED")
    with pytest.raises(AssetError, match=r"cannot reach .* \(ECONNREFUSED\)"):
        assets.ensure_assets(tmp_path / "cache")
    assert assets.main(["--dir", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot reach")


def test_missing_npm_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    with pytest.raises(AssetError, match="npm not found on PATH"):
        assets.ensure_assets(tmp_path / "cache")


def test_unpack_strips_the_top_folder_whatever_its_name(tmp_path):
    tgz = tmp_path / "odd.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("node/lib/a.js")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    target = tmp_path / "odd@1.0.0"
    assets._unpack(tgz, target, {"version": "1.0.0", "filename": tgz.name}, Asset("odd", "1.0.0"))
    assert (target / "lib" / "a.js").read_bytes() == b"a"
    assert json.loads((target / MARKER).read_text())["top_folder"] == "node"
    assert not list(tmp_path.glob(".unpack-*"))
