"""Tests of viz.assets, with the real ``npm`` and registry (as ``make assets`` uses them)."""

from __future__ import annotations

import io
import json
import stat
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


# ---------------------------------------------------------------- the real npm registry


def test_ensure_assets_lays_out_the_cdn_paths(viz_assets, tmp_path, monkeypatch):
    """The filled cache (downloaded with npm by the viz_assets fixture): one folder per package
    at its CDN path, npm's package in it, a marker naming what it holds, readable by anyone."""
    for asset in assets.required_assets():
        folder = viz_assets / asset.key
        meta = json.loads((folder / MARKER).read_text())
        assert meta["name"] == asset.name and meta["spec"] == asset.spec
        package = json.loads((folder / "package.json").read_text())
        assert package["name"] == asset.name and package["version"] == meta["version"]
        if asset.spec[0].isdigit() and asset.spec.count(".") == 2:
            assert meta["version"] == asset.spec          # an exact version is what was fetched
        assert stat.S_IMODE((folder / "package.json").stat().st_mode) & 0o044 == 0o044
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert (viz_assets / "@widgetti").is_dir()  # a scoped name nests, as in the url
    # complete: nothing to fetch, so it works with no npm at all
    monkeypatch.setenv("PATH", str(tmp_path))
    assert assets.ensure_assets(viz_assets) == viz_assets.resolve()
    assert assets.main(["--check", "--dir", str(viz_assets)]) == 0


@pytest.fixture
def cache_missing_one(viz_assets, tmp_path):
    """A cache holding the filled cache's packages (linked, not copied) except requirejs."""
    cache = tmp_path / "cache"
    victim = next(a for a in assets.required_assets() if a.name == "requirejs")
    for asset in assets.required_assets():
        if asset != victim:
            link = cache / asset.key
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(viz_assets / asset.key, target_is_directory=True)
    return cache, victim


def test_ensure_assets_fetches_only_what_is_missing(cache_missing_one):
    cache, victim = cache_missing_one
    assert assets.missing_assets(cache) == [victim]
    assert assets.ensure_assets(cache) == cache.resolve()     # npm pack, from the registry
    assert assets.missing_assets(cache) == []
    folder = cache / victim.key
    assert not folder.is_symlink() and (folder / "require.js").stat().st_size > 10_000
    assert json.loads((folder / MARKER).read_text())["version"] == victim.spec
    for f in folder.rglob("*"):                  # readable by a server run by another user
        mode = stat.S_IMODE(f.stat().st_mode)
        assert (mode == 0o755) if f.is_dir() else (mode & 0o044 == 0o044), f
    others = [a for a in assets.required_assets() if a != victim]
    assert all((cache / a.key).is_symlink() for a in others)   # the others were left alone
    assert not list(cache.glob(".unpack-*"))


def test_unreachable_registry_is_one_clear_line(cache_missing_one, monkeypatch, capsys):
    """(npm retries with back-off first: about 15 s.)"""
    cache, _ = cache_missing_one
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")     # nothing listens there
    assert assets.main(["--dir", str(cache)]) == 1                          # AssetError, caught
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: cannot reach http://127.0.0.1:9/ (ECONNREFUSED); no assets were downloaded"
    assert len(err) == 2 and err[0].startswith("downloading 1 package(s)")
    assert assets.missing_assets(cache) != []


def test_check_reports_missing(tmp_path, capsys):
    assert assets.main(["--check", "--dir", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert "missing  requirejs@" in out and "run python -m viz.assets" in out


def test_missing_npm_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    with pytest.raises(AssetError, match="npm not found on PATH"):
        assets.ensure_assets(tmp_path / "cache")


def test_unpack_strips_the_top_folder_whatever_its_name(tmp_path):
    tgz = tmp_path / "odd.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("node/lib")
        info.type, info.mode = tarfile.DIRTYPE, 0o700
        tar.addfile(info)
        info = tarfile.TarInfo("node/lib/a.js")
        info.size, info.mode = 1, 0o600                 # some tarballs ship private modes
        tar.addfile(info, io.BytesIO(b"a"))
    target = tmp_path / "odd@1.0.0"
    assets._unpack(tgz, target, {"version": "1.0.0", "filename": tgz.name}, Asset("odd", "1.0.0"))
    assert (target / "lib" / "a.js").read_bytes() == b"a"
    assert json.loads((target / MARKER).read_text())["top_folder"] == "node"
    assert not list(tmp_path.glob(".unpack-*"))
    # readable by a server run by another user
    assert stat.S_IMODE((target / "lib").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "lib" / "a.js").stat().st_mode) & 0o044 == 0o044
