"""Plotly's widget bundle (5 MB, plotly.js inside), published once for the app's pages.

Every Plotly chart of the app is an anywidget whose front-end module would otherwise be the
whole bundle, sent over the websocket and evaluated again for each chart. Here the bundle is
copied into ``public/`` beside ``viz/`` (Solara serves that folder at ``<root>/static/public/``)
under a name carrying its hash, with ``plotly-widget.json`` naming it: each chart's module
imports it from there (``viz.figures``), and ``assets/custom.js`` starts loading it as soon as a
page opens. Only the standard library here: ``viz.serve`` calls :func:`publish` before the
server starts, so a page's first request finds the files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

# Solara serves the folder "public" beside the app's folder (viz/) at <root>/static/public/
PUBLIC_DIR = Path(__file__).resolve().parents[1] / "public"
INDEX = "plotly-widget.json"


def bundle_path() -> Path:
    """plotly's widget bundle in the installed plotly package."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise OSError("plotly is not installed")
    return Path(spec.origin).resolve().parent / "package_data" / "widgetbundle.js"


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)   # two servers starting together cannot tear it


def publish(public_dir: Path = PUBLIC_DIR) -> str | None:
    """Copy the bundle into ``public_dir`` (if not there already) and name it in the index;
    return its file name, or None where that folder cannot be written (a read-only install:
    every chart then carries the bundle itself)."""
    try:
        data = bundle_path().read_bytes()
        name = f"plotly-widget-{hashlib.sha256(data).hexdigest()[:16]}.js"
        target = public_dir / name
        public_dir.mkdir(exist_ok=True)
        if not target.is_file() or target.stat().st_size != len(data):
            _write_atomic(target, data)
        index = (json.dumps({"bundle": name}) + "\n").encode()
        if not (public_dir / INDEX).is_file() or (public_dir / INDEX).read_bytes() != index:
            _write_atomic(public_dir / INDEX, index)
    except OSError:
        return None
    return name
