"""Run the Solara app with locally cached browser assets (works offline).

``serve()`` fills the asset cache (see ``viz.assets``), points the Solara server's
CDN proxy at it and starts ``solara run`` as a subprocess. Used by ``fourpl app``,
``make app`` and the browser tests::

    from viz.serve import serve
    serve()                                   # blocks until Ctrl-C
    proc = serve("viz/app.py", port=0, block=False, log_file="server.log")
    url = proc.url; ...; stop(proc)

``python -m viz.serve [APP] [--host H] [--port P] [--open]`` does the same from a shell.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from viz import plotly_bundle
from viz.assets import ENV_VAR, REPO_ROOT, AssetError, ensure_assets

DEFAULT_APP = "viz/app.py"
KERNEL_CULL_TIMEOUT = "60s"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the usual small race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def resolve_app(app_path: str | os.PathLike) -> Path:
    """``app_path`` as given if it exists, else relative to the repo root."""
    p = Path(app_path).expanduser()
    if p.exists():
        return p.resolve()
    if not p.is_absolute() and (REPO_ROOT / p).exists():
        return (REPO_ROOT / p).resolve()
    raise FileNotFoundError(f"no such app file: {app_path}")


# a local address where nothing listens: with offline=True a file missing from the cache
# fails at once (and shows in the server log) instead of being fetched from the internet
DEAD_CDN = "http://127.0.0.1:9/"


def server_env(
    cache_dir: str | os.PathLike | None = None,
    base: dict[str, str] | None = None,
    *,
    offline: bool = False,
) -> dict[str, str]:
    """Environment for the server process: the filled asset cache and the proxy forced on.

    ``offline=True`` also stops the server from reaching the internet: a cache miss
    is not fetched from the public CDN, and solara's usage telemetry is off.
    """
    env = dict(os.environ if base is None else base)
    env[ENV_VAR] = str(ensure_assets(cache_dir, quiet=False))  # prints only when it downloads
    # solara turns its CDN proxy off inside VS Code, Colab and Voila (it then loads the
    # assets straight from the internet); the cache is only used with the proxy on
    env["SOLARA_ASSETS_PROXY"] = "true"
    # the app must import the project's packages however the server is started
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("MPLBACKEND", "Agg")
    # a closed or reloaded page's kernel is culled after this (solara's default is 24 h, during
    # which an abandoned page's model and charts stay in memory); the app then stops its model
    # and keeps the session's runs for a reload (viz.store)
    env.setdefault("SOLARA_KERNEL_CULL_TIMEOUT", KERNEL_CULL_TIMEOUT)
    # solara warns on the first request that its session cookie cannot be SameSite=None over
    # plain http: true, and harmless for a page served to this machine; it only alarms users
    quiet = "ignore:Cookies with samesite=none require https"
    env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS", ""), quiet) if w)
    if offline:
        env["SOLARA_ASSETS_CDN"] = DEAD_CDN
        env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "false"
    return env


def serve(
    app_path: str | os.PathLike = DEFAULT_APP,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    *,
    block: bool = True,
    cache_dir: str | os.PathLike | None = None,
    log_file: str | os.PathLike | None = None,
    extra_args: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
    offline: bool = False,
    dev: bool = False,
    ready_timeout: float = 120.0,
) -> subprocess.Popen:
    """Start ``solara run APP --host HOST --port PORT --no-open`` with the cached assets.

    ``port=0`` picks a free port. The returned Popen has ``.url`` (the page's url).
    With ``block=True`` (the default, for ``fourpl app`` and ``make app``) waits for the
    server to exit and stops it on Ctrl-C; with ``block=False`` returns at once (call
    ``wait_until_ready(proc.url, proc=proc)`` and ``stop(proc)``). ``open_browser`` opens
    the page in the default browser once it answers. ``log_file`` receives the
    server's stdout and stderr (default: inherited). ``offline`` (see ``server_env``)
    makes a missing asset fail at once instead of being fetched from the public CDN.
    ``dev=True`` runs Solara in development mode (the page reloads when a source file
    changes); the default is production mode: a running app is not reloaded under its
    users when someone edits the code, and the browser gets the minified front end.
    """
    app = resolve_app(app_path)
    plotly_bundle.publish()   # before the first page asks for it (assets/custom.js)
    env = server_env(cache_dir, offline=offline)
    env.update(extra_env or {})
    if port == 0:
        port = free_port(host)
    cmd = [
        sys.executable, "-m", "solara", "run", str(app),
        "--host", host, "--port", str(port), "--no-open",
        *(() if dev else ("--production",)),
        *extra_args,
    ]  # fmt: skip
    out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - lives as long as the server
    try:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=str(REPO_ROOT) if (REPO_ROOT / "pyproject.toml").is_file() else None,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() ends all of it
        )
    finally:
        if out:
            out.close()  # the child holds its own copy
    url_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    proc.url = f"http://{url_host}:{port}/"  # type: ignore[attr-defined]
    proc.args_used = cmd  # type: ignore[attr-defined]
    if open_browser:
        try:
            wait_until_ready(proc.url, ready_timeout, proc=proc)  # type: ignore[attr-defined]
            webbrowser.open(proc.url)  # type: ignore[attr-defined]
        except Exception:
            stop(proc)
            raise
    if block:
        print(f"Solara app {app.name} at {proc.url} (assets: {env[ENV_VAR]}); Ctrl-C to stop", file=sys.stderr)  # type: ignore[attr-defined]
        # the server runs in its own session, so a terminal's Ctrl-C reaches only us: pass
        # it on, and SIGTERM/SIGHUP too (make, a process manager), never leaving it orphaned
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, _raise_interrupt)
        try:
            proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop(proc)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return proc


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def wait_until_ready(url: str, timeout: float = 60.0, *, proc: subprocess.Popen | None = None, interval: float = 0.25) -> None:
    """Poll ``url`` until it answers HTTP 200; raise TimeoutError (or RuntimeError if ``proc`` died)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"solara server exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s (last: {last})")


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """Stop the server and its process group: SIGTERM, then SIGKILL after ``timeout``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    """Command line: serve the app (``python -m viz.serve --help``); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m viz.serve", description="Serve the Solara app with cached assets.")
    parser.add_argument("app", nargs="?", default=DEFAULT_APP)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.add_argument("--offline", action="store_true", help="never fetch a missing asset from the public CDN")
    parser.add_argument("--dev", action="store_true",
                        help="development mode: reload the page when a source file changes")
    args = parser.parse_args(argv)
    try:
        proc = serve(args.app, args.host, args.port, args.open, block=True, offline=args.offline, dev=args.dev)
    except (AssetError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if proc.returncode in (0, -signal.SIGTERM) else proc.returncode


if __name__ == "__main__":
    sys.exit(main())
