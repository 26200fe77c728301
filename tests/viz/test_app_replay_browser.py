"""The Replay tab driven in headless Chromium, offline (viz/app.py, served for real).

Opens run-a (a `fourpl run` folder made by conftest.make_results) from the sidebar, chooses it
in the Replay tab, moves the day slider with the keyboard, and checks what the page shows for
that day against the run's own files: the delivered figure is timeseries.parquet's, the charts
mark that date, and a clicked lane's history holds, every day, the number of parcels that
started a leg on it in parcels.parquet (recomputed here with pandas from each parcel's route,
whose stages come from the world file the run's config.toml names). Waits are on conditions,
never on the clock.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

pytest.importorskip("solara")
pytest.importorskip("plotly")

from viz.assets import REPO_ROOT  # noqa: E402

APP = REPO_ROOT / "viz" / "app.py"
pytestmark = pytest.mark.browser
DAY = 12  # the day the slider is moved to


def _ready(page):
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Step", exact=True)).to_be_visible(timeout=120_000)
    page.locator(".fourpl-map .js-plotly-plot .main-svg").first.wait_for(state="visible")


def _plot(page, css: str) -> str:
    sel = f"{css} .js-plotly-plot"
    page.locator(sel).first.wait_for(state="visible")
    page.wait_for_function(f"() => {{ const g = document.querySelector('{sel}'); "
                           "return g && g._fullLayout && Array.isArray(g.data) && g.data.length > 0; }")
    return sel


def _legs_on(folder: Path, resource: int) -> pd.Series:
    """Parcels that started a leg on ``resource`` each day, from parcels.parquet."""
    from market.world import load_world

    world = load_world(tomllib.loads((folder / "config.toml").read_text()).get("world", "world"))
    p = pq.read_table(folder / "parcels.parquet").to_pandas()
    days = []
    for k in range(1, 17):
        if f"leg{k}_start" not in p.columns:
            break
        sub = p[p[f"leg{k}_start"] >= 0]
        on = [len(world.routes[int(r)].resources) >= k and world.routes[int(r)].resources[k - 1] == resource
              for r in sub["route"]]
        days += sub.loc[on, f"leg{k}_start"].astype(int).tolist()
    return pd.Series(days, dtype=int).value_counts()


def test_replay_a_run_scrub_its_days_and_click_a_lane(solara_app_server, viz_page, results_dirs):
    from playwright.sync_api import expect

    server = solara_app_server(APP)
    log_mark = server.mark()  # the server is shared: judge only what this test caused
    probe, page = viz_page, viz_page.page
    folder = results_dirs["a"]
    raw = pq.read_table(folder / "timeseries.parquet").to_pandas()
    page.goto(server.url, wait_until="domcontentloaded")
    _ready(page)
    probe.wait_until_quiet()

    # nothing to replay yet; then run-a opened from the sidebar
    page.get_by_role("tab", name="Replay").click()
    expect(page.locator(".fourpl-replay-none")).to_be_visible()
    page.locator(".fourpl-open-path input").fill(str(folder))
    expect(page.locator(".fourpl-open")).to_be_enabled()
    page.locator(".fourpl-open").click()
    expect(page.locator(".fourpl-kept")).to_have_count(1)

    # chosen (the only run folder kept), day 0; the slider moved to DAY with the keyboard
    expect(page.locator(".fourpl-replay-run")).to_contain_text("run-a")
    expect(page.locator(".fourpl-replay-day")).to_have_text("Day 0")
    thumb = page.locator(".fourpl-replay-slider [role=slider]").first
    thumb.focus()
    for _ in range(DAY):
        thumb.press("ArrowRight")
    expect(page.locator(".fourpl-replay-day")).to_have_text(f"Day {DAY}")

    # that day's figure is timeseries.parquet's
    when = pd.Timestamp(raw["date"].iloc[DAY])
    expect(page.locator(".fourpl-replay-kpis .fourpl-kpi-sub").first).to_contain_text(when.strftime("%d %b %Y"))
    expect(page.locator(".fourpl-replay-delivered")).to_have_text(f"{int(raw['parcels_delivered'].iloc[DAY]):,}")

    # the charts mark that date
    sel = _plot(page, ".fourpl-replay .fourpl-chart-parcels")
    marked = page.wait_for_function(f"""() => {{
        const g = document.querySelector('{sel}');
        const s = ((g && g.layout && g.layout.shapes) || []).filter(s => s.name === 'fourpl-day');
        return s.length === 1 && String(s[0].x0).slice(0, 10) === '{when.date().isoformat()}' ? s[0].x0 : false;
    }}""").json_value()
    assert str(marked).startswith(when.date().isoformat())

    # the busiest lane on the map that day, clicked where the browser drew it
    sel = _plot(page, ".fourpl-replay-map")
    page.locator(sel).scroll_into_view_if_needed()
    target = page.evaluate(f"""() => {{
        const g = document.querySelector('{sel}');
        const t = g.data.find(t => t.name === 'lanes');
        let best = 0, flow = -1;
        t.text.forEach((s, j) => {{ const m = s.match(/<br>[^<]*: ([\\d,]+) parcels/);
            const f = m ? parseInt(m[1].replace(/,/g, '')) : -1; if (f > flow) {{ flow = f; best = j; }} }});
        const L = g._fullLayout, r = g.getBoundingClientRect();
        return {{x: r.left + L._size.l + L.xaxis.l2p(t.x[best]), y: r.top + L._size.t + L.yaxis.l2p(t.y[best]),
                 name: t.text[best].split('</b>')[0].replace('<b>', ''), flow: flow, lane: t.customdata[best][1]}};
    }}""")
    assert target["flow"] > 0
    page.mouse.move(target["x"], target["y"])
    page.locator(f"{sel} .hoverlayer .hovertext").first.wait_for(state="attached")
    page.mouse.click(target["x"], target["y"])
    title = page.locator(".fourpl-replay-selection-title")
    expect(title).to_contain_text(target["name"])

    # its volume that day, and every day, is the count of legs started on it in parcels.parquet
    from market.world import load_world

    world = load_world(tomllib.loads((folder / "config.toml").read_text()).get("world", "world"))
    counts = _legs_on(folder, world.lanes[int(target["lane"])].index)
    want = int(counts.get(DAY, 0))
    assert want == target["flow"]
    expect(title).to_contain_text(f"{when.strftime('%d %b %Y')}: {want:,} parcels")
    sel2 = _plot(page, ".fourpl-replay-selection")
    used = page.wait_for_function(f"""() => {{
        const g = document.querySelector('{sel2}');
        const t = (g && g.data || []).find(t => t.name === 'used');
        return t && t.y && t.y.length === {len(raw)} ? Array.from(t.y) : false;
    }}""").json_value()
    assert [int(v) for v in used] == [int(counts.get(d, 0)) for d in range(len(raw))]
    probe.screenshot("replay-lane")

    assert not probe.unexpected_console_errors, f"console errors:\n{probe.problems()}"
    assert not probe.unexpected_page_errors, f"uncaught page errors:\n{probe.problems()}"
    assert not probe.external_requests, f"the page reached for the internet:\n{probe.problems()}"
    server.assert_no_errors(log_mark)
