"""Cache Solara's browser assets locally, so the app works without internet.

The Solara server serves ``/_solara/cdn/<path>`` from the directory named by the
environment variable ``SOLARA_ASSETS_PROXY_CACHE_DIR`` and, for a file missing
there, fetches it from a public CDN (jsdelivr). With no internet (a firewall, CI,
these machines) that fetch fails and the page stays blank. This module fills the
cache from the npm registry instead: ``npm pack <name>@<version>``, then the
tarball's ``package/`` folder is unpacked into ``DIR/<name>@<version>/``, which is
exactly the path the page requests.

The package versions are not hard-coded: they are read from the installed solara
package (its HTML template, its ``.vue`` widgets and its settings), so a solara
upgrade changes what is cached. Which *packages* the project needs is listed in
``REQUIRED_PACKAGES``; a name that solara no longer references is an error.

Command line::

    python -m viz.assets               # fill the default cache (.cache/solara-assets)
    python -m viz.assets --dir DIR     # another directory
    python -m viz.assets --check       # exit 1 if anything is missing, download nothing
    python -m viz.assets --list        # print what would be cached
    python -m viz.assets --all         # also anything else solara references (none today)

From Python: ``ensure_assets(cache_dir=None) -> Path``.

Why not the PyPI package ``solara-assets`` (checked on 30 Nov 2026 against solara 1.64.1):
solara's ``assets`` extra pins ``solara-assets==1.64.1``, which PyPI does not have; the newest
there, 1.58.2, bundles ``solara-vuetify3-app`` 5.1.1 (solara asks for 5.2.0), has no ``katex``
(every ``solara.Markdown`` loads it), and ships the Vega libraries as ``vega@5.21.0`` and so on,
while the page requests ``vega@5/...``: the cache would still need the npm registry for three
of the ten packages, and a solara upgrade would go on outrunning it. So the cache is filled
from npm, with the versions read from the installed solara.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "SOLARA_ASSETS_PROXY_CACHE_DIR"
MARKER = ".fourpl-asset.json"
REPO_ROOT = Path(__file__).resolve().parents[1]

# npm packages the project's pages request through /_solara/cdn/. The versions
# come from the installed solara (see discover_cdn_specs).
REQUIRED_PACKAGES: tuple[str, ...] = (
    "@widgetti/solara-vuetify-app",  # the page itself (Vue 2; solara.html.j2)
    "@widgetti/solara-vuetify3-app",  # the same when SOLARA_VUETIFY3 / vue3 is on
    "requirejs",  # module loader (solara.html.j2 and every widget that imports from the CDN)
    "font-awesome",  # icons (solara.server.settings.assets.fontawesome_path)
    "@widgetti/vue-grid-layout",  # solara.GridDraggable, which SolaraViz uses for its main area
    "vega",  # solara.FigureAltair (Mesa's altair space and plot backends)
    "vega-lite",
    "vega-embed",
    "mermaid",  # every solara.Markdown loads both on mount, whatever its text
    "katex",  # (Mesa's CommandConsole and most custom info panels are Markdown)
)

# `{{cdn}}/<name>@<spec>/...` in the Jinja template, `${this.getCdn()}/<name>@<spec>/...` in widgets
_CDN_REF = re.compile(
    r"(?:\{\{\s*cdn\s*\}\}|\$\{\s*this\.getCdn\(\)\s*\})/"
    r"(?P<name>(?:@[\w.-]+/)?[\w.-]+)@(?P<spec>[\w.+-]+)/"
)
_FONTAWESOME_DEFAULT = re.compile(r'fontawesome_path\s*:\s*str\s*=\s*"([^"]+)"')
_SPEC_IN_PATH = re.compile(r"^/?(?P<name>(?:@[\w.-]+/)?[\w.-]+)@(?P<spec>[\w.+-]+)/")


class AssetError(RuntimeError):
    """Raised with a one-line, user-facing message."""


@dataclass(frozen=True, order=True)
class Asset:
    """One npm package version the page loads from Solara's CDN path."""

    name: str  # npm package name, e.g. "@widgetti/solara-vuetify-app"
    spec: str  # version or range as written in the url, e.g. "10.1.1" or "5"

    @property
    def key(self) -> str:
        """The url path segment and cache folder name: ``<name>@<spec>``."""
        return f"{self.name}@{self.spec}"

    def folder(self, cache_dir: Path) -> Path:
        """Where this package is unpacked in the cache."""
        return cache_dir / self.key


# ---------------------------------------------------------------- discovery


def _solara_dir() -> Path:
    """The installed solara package's folder (found without importing it: that is slow)."""
    spec = importlib.util.find_spec("solara")
    if spec is None or not spec.origin:
        raise AssetError("solara is not installed: pip install -e '.[viz]'")
    return Path(spec.origin).resolve().parent


def _solara_version() -> str:
    try:
        return importlib.metadata.version("solara")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _solara_source_files(root: Path) -> Iterator[Path]:
    for pattern in ("*.j2", "*.html", "*.vue", "*.py", "*.js"):
        for path in root.rglob(pattern):
            rel = path.relative_to(root)
            # the documentation website is not part of an app's page
            if rel.parts[0] in ("website", "__pycache__") or "node_modules" in rel.parts:
                continue
            yield path


def discover_cdn_specs() -> dict[str, set[str]]:
    """Every ``name -> {spec, ...}`` that the installed solara loads through its CDN proxy."""
    root = _solara_dir()
    found: dict[str, set[str]] = {}
    for path in _solara_source_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for m in _CDN_REF.finditer(text):
            found.setdefault(m["name"], set()).add(m["spec"])
    # font-awesome's path is a setting: its default in server/settings.py, and the
    # environment may override it (SOLARA_ASSETS_FONTAWESOME_PATH)
    settings_py = (root / "server" / "settings.py").read_text(encoding="utf-8")
    paths = _FONTAWESOME_DEFAULT.findall(settings_py)
    if os.environ.get("SOLARA_ASSETS_FONTAWESOME_PATH"):
        paths.append(os.environ["SOLARA_ASSETS_FONTAWESOME_PATH"])
    for path in paths:
        m = _SPEC_IN_PATH.match(path)
        if m:
            found.setdefault(m["name"], set()).add(m["spec"])
    return found


def required_assets(include_all: bool = False) -> list[Asset]:
    """The assets to cache, with versions read from the installed solara.

    ``include_all`` adds every other package solara references through its CDN
    (none beyond REQUIRED_PACKAGES in solara 1.64.1).
    """
    found = discover_cdn_specs()
    names = tuple(REQUIRED_PACKAGES) + (tuple(sorted(set(found) - set(REQUIRED_PACKAGES))) if include_all else ())
    missing = [n for n in names if n not in found]
    if missing:
        raise AssetError(
            f"solara {_solara_version()} no longer references {', '.join(missing)} "
            "through its CDN; update REQUIRED_PACKAGES in viz/assets.py"
        )
    return sorted(Asset(n, s) for n in names for s in found[n])


# ---------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    """``$SOLARA_ASSETS_PROXY_CACHE_DIR`` if set, else ``.cache/solara-assets`` in the repo."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / ".cache" / "solara-assets"
    return Path.home() / ".cache" / "fourpl-market" / "solara-assets"  # installed, not a checkout


def is_cached(asset: Asset, cache_dir: Path) -> bool:
    """Whether the package is fully unpacked in the cache (its marker file is written last)."""
    return (asset.folder(cache_dir) / MARKER).is_file()


def missing_assets(cache_dir: Path | None = None, include_all: bool = False) -> list[Asset]:
    """The required packages (with ``include_all``, every one solara references) not yet cached."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    return [a for a in required_assets(include_all) if not is_cached(a, cache_dir)]


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """One filler at a time (parallel test workers, two servers starting)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_NPM_NETWORK_CODES = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH", "EHOSTUNREACH")


def _npm_registry(npm: str) -> str:
    try:
        out = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "the npm registry"
    except (OSError, subprocess.SubprocessError):
        return "the npm registry"


def _npm_pack(assets: list[Asset], dest: Path) -> list[dict]:
    """``npm pack`` every asset into ``dest``; returns npm's JSON records in order."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            "npm not found on PATH: install Node.js and npm (e.g. apt-get install -y npm), "
            "or copy a filled cache into the assets directory"
        )
    cmd = [
        npm, "pack", *(a.key for a in assets),
        "--json", "--pack-destination", str(dest),
        "--loglevel=error", "--no-update-notifier", "--fetch-retries=2", "--fetch-timeout=60000",
        "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=dest)
    except subprocess.TimeoutExpired as exc:
        raise AssetError(f"npm pack timed out after {exc.timeout:.0f}s: is {_npm_registry(npm)} reachable?") from exc
    if proc.returncode != 0:
        err = proc.stderr + proc.stdout
        code = next((c for c in _NPM_NETWORK_CODES if c in err), None)
        if code:
            raise AssetError(f"cannot reach {_npm_registry(npm)} ({code}); no assets were downloaded")
        if "E404" in err or "ETARGET" in err:
            line = next((ln for ln in err.splitlines() if "404" in ln or "ETARGET" in ln or "No matching" in ln), "")
            raise AssetError(f"npm registry has no such package/version: {line.strip() or err.strip()[:200]}")
        first = next((ln.strip() for ln in err.splitlines() if ln.strip()), f"exit code {proc.returncode}")
        raise AssetError(f"npm pack failed: {first}")
    try:
        records = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssetError(f"npm pack printed no JSON: {proc.stdout.strip()[:200]}") from exc
    if len(records) != len(assets):
        raise AssetError(f"npm pack returned {len(records)} tarballs for {len(assets)} packages")
    return records


def _unpack(tarball: Path, target: Path, record: dict, asset: Asset) -> None:
    """Unpack the tarball's top folder (``package/``) into ``target``, atomically."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
            tops = {m.name.split("/", 1)[0] for m in members}
            if len(tops) != 1:
                raise AssetError(f"{tarball.name}: expected one top folder, found {sorted(tops)}")
            top = tops.pop()
            for m in members:
                rel = m.name.split("/", 1)[1] if "/" in m.name else ""
                if not rel:
                    continue
                m.name = rel
                m.mode = (m.mode | 0o644) if m.isfile() else 0o755  # some tarballs ship 0600/0700
                tar.extract(m, staging, filter="data")
        meta = {
            "name": asset.name,
            "spec": asset.spec,
            "version": record.get("version"),
            "integrity": record.get("integrity"),
            "tarball": record.get("filename"),
            "top_folder": top,
            "cached_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        staging.chmod(0o755)  # mkdtemp made it 0700; a server run by another user must read it
        if target.exists():  # a partial folder from an interrupted run (no marker)
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def ensure_assets(cache_dir: str | os.PathLike | None = None, *, include_all: bool = False, quiet: bool = True) -> Path:
    """Make sure every asset is in ``cache_dir``; download what is missing. Returns the dir.

    Idempotent and cheap when everything is present (one marker file per package).
    Raises AssetError (a RuntimeError) with a one-line message on failure.
    """
    cache_dir = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()).resolve()
    assets = required_assets(include_all)
    if all(is_cached(a, cache_dir) for a in assets):
        return cache_dir
    with _locked(cache_dir):
        todo = [a for a in assets if not is_cached(a, cache_dir)]  # another process may have filled it
        if not todo:
            return cache_dir
        t0 = time.monotonic()
        if not quiet:
            print(f"downloading {len(todo)} package(s) into {cache_dir}: {' '.join(a.key for a in todo)}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="solara-assets-") as tmp:
            records = _npm_pack(todo, Path(tmp))
            for asset, record in zip(todo, records, strict=True):
                target = asset.folder(cache_dir)
                target.parent.mkdir(parents=True, exist_ok=True)  # the @scope folder
                _unpack(Path(tmp) / record["filename"], target, record, asset)
                if not quiet:
                    print(f"  {asset.key} -> {record.get('version')}", file=sys.stderr)
        if not quiet:
            print(f"done in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return cache_dir


def cached_summary(cache_dir: Path, assets: Iterable[Asset]) -> list[str]:
    """One line per package: ``ok`` with the version cached, or ``missing``."""
    lines = []
    for a in assets:
        marker = a.folder(cache_dir) / MARKER
        if marker.is_file():
            version = json.loads(marker.read_text()).get("version")
            lines.append(f"ok       {a.key}  ({version})")
        else:
            lines.append(f"missing  {a.key}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line: fill or check the asset cache (``python -m viz.assets --help``); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m viz.assets",
        description="Cache Solara's browser assets (from the npm registry) for offline use.",
    )
    parser.add_argument("--dir", type=Path, default=None, help=f"cache directory (default: ${ENV_VAR} or .cache/solara-assets)")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if anything is missing")
    parser.add_argument("--list", action="store_true", help="print the packages and their cache state")
    parser.add_argument("--all", action="store_true", help="also cache any other package solara loads from its CDN")
    args = parser.parse_args(argv)
    try:
        cache_dir = (args.dir.expanduser() if args.dir else default_cache_dir()).resolve()
        assets = required_assets(args.all)
        if args.list or args.check:
            for line in cached_summary(cache_dir, assets):
                print(line)
            if args.check:
                n = sum(not is_cached(a, cache_dir) for a in assets)
                print(f"{cache_dir}: {'complete' if n == 0 else f'{n} package(s) missing; run python -m viz.assets'}")
                return 1 if n else 0
            return 0
        ensure_assets(cache_dir, include_all=args.all, quiet=False)
        print(f"{cache_dir}: complete ({len(assets)} packages); serve with {ENV_VAR}={cache_dir}")
        return 0
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
