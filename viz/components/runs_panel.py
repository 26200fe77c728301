"""The sidebar's runs card: keep the live run, open result folders, tick runs to overlay, export.

Kept runs live in the browser session's :class:`viz.store.RunStore` (a reload finds them
again). A ``fourpl run`` folder opens as one run; a ``fourpl sweep`` folder offers its design
points and replications (a point is kept as the mean of the ticked replications, drawn with a
95% band). The current parameters download as a scenario TOML that ``fourpl run -s`` accepts.
"""

from __future__ import annotations

from pathlib import Path

import solara
import tomli_w

from viz import style
from viz.runs import LoadError, Run, Sweep, open_results, run_from_model
from viz.store import RunStore, SweepPoint


def scenario_toml(settings: dict) -> bytes:
    """The controls' scenario (built-in name plus the sliders that differ) as a complete
    scenario TOML (every section, validated), for ``fourpl run -s FILE``."""
    from market.scenario import load_scenario, to_toml_dict
    from viz.state import overrides_for

    name = settings.get("scenario_name", "baseline")
    ovr = overrides_for(name, settings.get("values"))
    cfg = load_scenario(name, ovr)
    d = to_toml_dict(cfg)
    if ovr:
        d["description"] = (str(d.get("description", "")) + " | changed in the app: "
                            + ", ".join(f"{k}={v}" for k, v in ovr.items())).strip(" |")
    return tomli_w.dumps(d).encode("utf-8")


def open_into(store: RunStore, path: str) -> Run | Sweep:
    """Open a folder and keep it: a run is added (ticked); a sweep is returned for picking."""
    res = open_results(path)
    p = str(Path(path).expanduser())
    if p not in store.opened:
        store.opened.append(p)
    if isinstance(res, Run):
        store.add(res)
    return res


def add_sweep_points(store: RunStore, sweep: Sweep, points: list[int], reps: list[int] | None) -> None:
    for p in points:
        sp = SweepPoint(sweep, int(p), tuple(reps) if reps else None)
        store.add(sp.as_run(), point=sp)


def live_label(model) -> str:
    from viz.state import ui_params

    labels = {p.key: p.label for p in ui_params()}
    parts = [str(getattr(model, "scenario_name", "?")), f"seed {getattr(model, 'app_seed', '?')}"]
    parts += [f"{labels.get(k, k)} {v}" for k, v in (getattr(model, "app_overrides", None) or {}).items()]
    return f"{' · '.join(parts)} · day {int(model.steps)}"


@solara.component
def SweepPicker(store: RunStore, sweep: Sweep, on_change):
    points = sweep.points
    reps = sweep.replications
    chosen_p = solara.use_reactive([p for p, _ in points[:2]])
    chosen_r = solara.use_reactive(list(reps))
    with solara.Div(classes=["fourpl-sweep-picker"]):
        solara.Text(f"Sweep {sweep.name}: {len(points)} design points × {len(reps)} replications",
                    style={"font-size": "0.85em"})
        for p, lab in points:
            with solara.Div(classes=["fourpl-sweep-point"]):
                solara.Checkbox(label=f"{p}: {lab}", value=p in chosen_p.value,
                                on_value=lambda v, p=p: chosen_p.set(sorted(set(chosen_p.value) | {p}) if v
                                                                     else [x for x in chosen_p.value if x != p]))
        solara.Text("Replications", style={"font-size": "0.8em", "color": style.MUTED})
        with solara.Row(classes=["fourpl-wrap"]):
            for r in reps:
                with solara.Div(classes=["fourpl-sweep-rep"]):
                    solara.Checkbox(label=str(r), value=r in chosen_r.value,
                                    on_value=lambda v, r=r: chosen_r.set(sorted(set(chosen_r.value) | {r}) if v
                                                                         else [x for x in chosen_r.value if x != r]))

        def add():
            add_sweep_points(store, sweep, chosen_p.value, chosen_r.value if len(chosen_r.value) < len(reps) else None)
            on_change()

        solara.Button("Add the ticked points", on_click=add, color="primary", text=True,
                      classes=["fourpl-sweep-add"], disabled=not chosen_p.value or not chosen_r.value)


@solara.component
def RunsPanel(store: RunStore, model, settings: solara.Reactive, tick: solara.Reactive, include_live: solara.Reactive):
    """Keep, open, tick and export runs."""
    _version = tick.value  # read while rendering: a change of the kept runs re-renders this card
    path = solara.use_reactive("")
    error = solara.use_reactive("")
    sweep = solara.use_reactive(None)

    def changed():
        tick.set(tick.value + 1)

    def keep():
        run = run_from_model(model, key=f"kept-{id(model)}-{int(model.steps)}", label=live_label(model))
        store.add(run)
        changed()

    def do_open():
        error.set("")
        try:
            res = open_into(store, path.value)
        except LoadError as exc:
            error.set(str(exc))
            return
        sweep.set(res if isinstance(res, Sweep) else None)
        changed()

    with solara.Card("Runs", classes=["fourpl-card", "fourpl-runs"]):
        with solara.Div(classes=["fourpl-include-live"]):
            solara.Checkbox(label="Show the live run", value=include_live)
        solara.Button("Keep this run", on_click=keep, color="primary", text=True, classes=["fourpl-keep"],
                      disabled=int(getattr(model, "steps", 0)) == 0)
        with solara.Row(classes=["fourpl-wrap"]):
            solara.InputText("Open a results folder", value=path, continuous_update=True, classes=["fourpl-open-path"])
            solara.Button("Open", on_click=do_open, classes=["fourpl-open"], disabled=not path.value.strip())
        if error.value:
            solara.Error(error.value, dense=True, classes=["fourpl-load-error"])
        if sweep.value is not None:
            SweepPicker(store, sweep.value, changed)
        entries = list(store.entries.values())
        if entries:
            solara.Text("Overlaid on the charts (ticked):", style={"font-size": "0.8em", "color": style.MUTED})
        for e in entries:
            key = e.key

            def toggle(v, key=key):
                sel = list(store.selected)
                if v and key not in sel:
                    sel.append(key)
                if not v and key in sel:
                    sel.remove(key)
                store.select(sel)
                changed()

            def drop(key=key):
                store.remove(key)
                changed()

            with solara.Row(classes=["fourpl-kept"], gap="2px"):
                with solara.Div(classes=["fourpl-kept-check"]):
                    solara.Checkbox(label=e.run.label, value=key in store.selected, on_value=toggle)
                solara.Button(icon_name="mdi-close", icon=True, on_click=drop, classes=["fourpl-kept-drop"])
        with solara.Row(classes=["fourpl-wrap"]):
            with solara.Div(classes=["fourpl-export-toml"]):
                solara.FileDownload(lambda: scenario_toml(settings.value),
                                    filename=f"{settings.value.get('scenario_name', 'scenario')}-app.toml",
                                    label="Scenario TOML", icon_name="mdi-download")
