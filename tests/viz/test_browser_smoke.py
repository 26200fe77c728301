"""Serve the smoke SolaraViz page for real and drive it in headless Chromium.

Proves the whole chain works with no internet: the assets come from the local
cache, the page renders its sidebar (controls) and main area (network space, plot,
custom component), and the Step button advances the model and redraws the plot.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("solara")

STEPS = 3
COUNTER = ".smoke-step-counter"
# the network space, drawn by vega-embed into a canvas (or svg) of real size
VEGA_DRAWN = """() => {
    const el = document.querySelector('.vega-embed canvas, .vega-embed svg');
    if (!el) return false;
    const r = el.getBoundingClientRect();
    return r.width > 100 && r.height > 100;
}"""
IMG_LOADED = "img => img.complete && img.naturalWidth > 0"


def _plot(page):
    # the matplotlib plot is an ipywidgets Image; the space is drawn by vega-embed
    return page.locator("img.widget-image").first


def _png(locator, attempts: int = 5) -> bytes:
    """The element's pixels; retried, since Solara may swap the <img> mid-screenshot."""
    from playwright.sync_api import Error

    for attempt in range(attempts):
        try:
            locator.page.wait_for_function(IMG_LOADED, arg=locator.element_handle())
            return locator.screenshot()
        except Error as exc:
            if ("not attached" not in str(exc) and "detached" not in str(exc)) or attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def _counter_value(page) -> int:
    text = page.locator(COUNTER).inner_text().strip()
    assert text.startswith("Smoke steps:"), text
    return int(text.split(":", 1)[1])


def _wait_for_change(read, before, timeout: float = 20.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    current = read()
    while current == before and time.monotonic() < deadline:
        time.sleep(interval)
        current = read()
    return current


@pytest.mark.browser
def test_smoke_page_renders_and_steps(smoke_server, viz_page):
    from playwright.sync_api import expect

    page = viz_page.page
    page.goto(smoke_server.url, wait_until="domcontentloaded")

    # sidebar: SolaraViz's controls and the model's parameters
    step = page.get_by_role("button", name="Step")
    expect(step).to_be_visible(timeout=60_000)  # first load compiles the page: allow for a cold start
    expect(page.get_by_role("button", name="Reset")).to_be_visible()
    expect(page.get_by_text("Model Parameters")).to_be_visible()
    expect(page.get_by_text("Nodes", exact=True)).to_be_visible()

    # main area: the network space (vega), the matplotlib plot and the custom component
    plot = _plot(page)
    expect(plot).to_be_visible()
    expect(page.locator(COUNTER)).to_be_visible()
    expect(page.locator(".smoke-counter-card strong")).to_have_text("42")  # solara.Markdown rendered
    viz_page.wait_until_quiet()  # SolaraViz re-renders once after the first paint
    page.wait_for_function(VEGA_DRAWN)
    page.wait_for_function(IMG_LOADED, arg=plot.element_handle())
    viz_page.screenshot("loaded")

    start = _counter_value(page)
    before_png = _png(plot)
    before_src = plot.get_attribute("src")

    for i in range(1, STEPS + 1):
        step.click()
        expect(page.locator(COUNTER)).to_have_text(f"Smoke steps: {start + i}")
    expect(page.get_by_text(f"Time: {float(start + STEPS)}")).to_be_visible()  # SolaraViz's own counter

    after_src = _wait_for_change(lambda: plot.get_attribute("src"), before_src)
    assert after_src != before_src, "the plot image was not replaced after stepping"
    after_png = _wait_for_change(lambda: _png(plot), before_png)
    assert after_png != before_png, "the plot looks the same after stepping"

    viz_page.wait_until_quiet()
    page.wait_for_function(VEGA_DRAWN)
    shot = viz_page.screenshot("stepped")
    assert shot.stat().st_size > 20_000, f"{shot} is suspiciously small (blank page?)"

    viz_page.wait_for_cdn_idle()
    assert not viz_page.cdn_failures, f"/_solara/cdn/ requests failed:\n{viz_page.problems()}"
    assert not viz_page.console_errors, f"console errors:\n{viz_page.problems()}"
    assert not viz_page.unexpected_page_errors, f"uncaught page errors:\n{viz_page.problems()}"
    assert not viz_page.failed_requests, f"failed requests:\n{viz_page.problems()}"
    assert not viz_page.external_requests, f"the page reached for the internet:\n{viz_page.problems()}"
    misses = smoke_server.cdn_misses()
    assert not misses, f"assets missing from the cache (see {smoke_server.log_path}):\n" + "\n".join(misses)
