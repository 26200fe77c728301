"""Tests of viz.serve: the real server with cached assets, fetched over HTTP (no browser)."""

from __future__ import annotations

import urllib.request

import pytest

pytest.importorskip("solara")

from viz.assets import REPO_ROOT  # noqa: E402
from viz.serve import free_port, resolve_app, server_env, wait_until_ready  # noqa: E402

APP = REPO_ROOT / "viz" / "app.py"


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, resp.read()


def test_server_serves_the_app_and_cached_assets(solara_app_server):
    """The project's app (viz/app.py), served offline: its page, and its browser assets from the
    local cache (never fetched)."""
    server = solara_app_server(APP)
    log_mark = server.mark()
    status, html = _get(server.url)
    assert status == 200 and b"/_solara/cdn" in html
    for path in (
        "@widgetti/solara-vuetify-app@10.1.1/dist/solara-vuetify-app8.js",
        "requirejs@2.3.6/require.js",
        "font-awesome@4.5.0/css/font-awesome.min.css",
        "vega@5/build/vega.min.js",
    ):
        status, body = _get(server.url + "_solara/cdn/" + path)
        assert status == 200 and len(body) > 1000, path
    assert not server.cdn_misses()
    server.assert_no_errors(since=log_mark)


def test_server_env_points_solara_at_the_cache(viz_assets):
    env = server_env(viz_assets, base={"VSCODE_PID": "1"}, offline=True)
    assert env["SOLARA_ASSETS_PROXY_CACHE_DIR"] == str(viz_assets)
    assert env["SOLARA_ASSETS_PROXY"] == "true"  # solara would turn the proxy off under VS Code
    assert env["SOLARA_ASSETS_CDN"].startswith("http://127.0.0.1:")


def test_wait_until_ready_times_out_on_a_dead_port():
    with pytest.raises(TimeoutError):
        wait_until_ready(f"http://127.0.0.1:{free_port()}/", timeout=1.5)


def test_resolve_app_is_relative_to_the_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_app("viz/app.py") == APP
    with pytest.raises(FileNotFoundError):
        resolve_app("no/such/app.py")


def test_server_errors_are_read_whole_and_from_a_mark(server_log):
    """uvicorn writes ``ERROR:    message`` then the traceback; a test sees whole errors, and only
    those logged after its mark (the server is shared by the tests of a worker)."""
    server_log.log_path.write_text(
        "INFO:     Started server process [1]\n"
        "ERROR:    Error sending message: boom, closing websocket\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "RuntimeError: boom\n"
        "INFO:     connection closed\n"
    )
    first = server_log.errors()
    assert first == [
        "ERROR:    Error sending message: boom, closing websocket\nTraceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nRuntimeError: boom'
    ]
    mark = server_log.mark()
    assert server_log.errors(since=mark) == []
    with server_log.log_path.open("a") as fh:
        fh.write(
            "WARNING:  Invalid JSON, will try a with a more forgiving json encoder\n"
            "Exception in thread Thread-3:\nTraceback (most recent call last):\nValueError: late\n"
            "INFO:     thread done!\n"
        )
    assert server_log.errors(since=mark) == ["Traceback (most recent call last):\nValueError: late"]
    with pytest.raises(AssertionError, match="ValueError: late"):
        server_log.assert_no_errors(since=mark)


def test_only_the_named_upstream_console_errors_are_tolerated(tmp_path):
    """The two upstream widget-teardown messages are set aside; anything else (even one that
    merely mentions a widget or a comm) still fails a browser test."""
    from tests.viz.conftest import PageProbe

    probe = PageProbe(page=None, artifacts_dir=tmp_path, name="probe")
    probe.console_errors += [
        "Error: widget model not found",
        "Comm not found for comm id 5c1e0a3f-2b9d-4a51-8c1e-0e0d7a1f2b3c",
        "Comm not found for comm id 5c1e, and then something else broke",
        "Failed to load widget model for the chart",
        "TypeError: cannot read properties of undefined (reading 'data')",
    ]
    assert probe.known_console_errors == probe.console_errors[:2]
    assert probe.unexpected_console_errors == probe.console_errors[2:]
    assert "known upstream console errors (tolerated)" in probe.problems()
