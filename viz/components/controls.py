"""The controls: scenario picker, seed, and sliders generated from the scenario schema.

The controls edit the app's settings (a reactive dict: ``scenario_name``, ``seed``, ``values``),
which Mesa's Reset button passes to :class:`viz.state.AppModel` to rebuild the model. Picking a
scenario moves every slider to that scenario's own value; only the sliders then moved away
from it become overrides. Which parameters have a control, and their ranges, units and
descriptions, come from the schema (``ui=True`` rows of ``market.scenario.parameter_table()``).
"""

from __future__ import annotations

import solara

from viz import style
from viz.state import (
    ParamSpec,
    pending_changes,
    scenario_description,
    scenario_names,
    scenario_values,
    ui_params,
)

SECTION_LABELS = {"demand": "Demand", "merchants": "Merchants", "carriers": "Carriers (3PLs)",
                  "warehouses": "Warehouses", "customs_agents": "Customs brokers", "integrators": "4PL integrators",
                  "market": "Market rules", "network": "Network", "claims": "Claims", "insurance": "Insurance",
                  "simulation": "Simulation"}
CHOICE_LABELS = {"first_price": "First-price sealed bid", "vickrey": "Vickrey (second price)",
                 "clock": "Descending clock", "package": "Package (combinatorial)"}


def choice_label(value) -> str:
    """A readable label for a choice of a select (e.g. an auction format)."""
    return CHOICE_LABELS.get(value, str(value).replace("_", " ").capitalize())


def param_class(key: str) -> str:
    """The CSS class of a control's wrapper, e.g. ``fourpl-param-demand-scale``."""
    return "fourpl-param-" + key.replace(".", "-").replace("_", "-")


def _fmt_value(p: ParamSpec, value, step: float | None = None) -> str:
    if p.kind == "float":
        digits = max(0, -int(f"{step or p.step or 0.01:e}".split("e")[1]))
        text = f"{float(value):,.{digits}f}"
    elif p.kind == "int":
        text = f"{int(value):,}"
    else:
        text = str(value)
    return f"{text} {p.unit}".strip() if p.unit and p.kind in ("float", "int") else text


@solara.component
def HelpTip(text: str, children=[]):
    """A tooltip right of its children (each given ``v_on="tooltip.on"``), so that it covers the
    main area, not the controls under it."""
    return solara.v.Tooltip(right=True, max_width=420, open_delay=100, children=[text],
                            content_class="fourpl-tooltip",
                            v_slots=[{"name": "activator", "variable": "tooltip", "children": children}])


@solara.component
def ParamControl(p: ParamSpec, value, on_value):
    """One schema parameter as a slider, a select or a checkbox, with its description as tooltip."""
    # The tooltip's activator is the control's wrapper <div>: a Vuetify tooltip opens on the
    # mouse events of its activator, and a v-slider or v-select does not pass them on (a tooltip
    # put on the slider itself never opened). The help text is also in the page as the wrapper's
    # aria-description (what a screen reader reads; a title would show a second tooltip).
    help_text = p.help_text()
    with HelpTip(help_text):
        with solara.v.Html(tag="div", class_=f"fourpl-param {param_class(p.key)}", v_on="tooltip.on",
                           attributes={"aria-description": help_text}):
            if p.kind in ("float", "int"):
                lo, hi, step = p.slider_range(value)
                label = f"{p.label}: {_fmt_value(p, value, step)}"
                if p.kind == "int":
                    solara.SliderInt(label, value=int(value), min=int(lo), max=int(hi), step=int(step),
                                     on_value=lambda v: on_value(int(v)))
                else:
                    solara.SliderFloat(label, value=float(value), min=float(lo), max=float(hi), step=float(step),
                                       on_value=lambda v: on_value(round(float(v), 10)))
            elif p.kind == "choice":
                labels = [choice_label(c) for c in p.choices]
                to_value = dict(zip(labels, p.choices))
                solara.Select(p.label, values=labels, value=choice_label(value),
                              on_value=lambda lab: on_value(to_value.get(lab, lab)), dense=True)
            elif p.kind == "bool":
                solara.Checkbox(label=p.label, value=bool(value), on_value=on_value)


@solara.component
def Controls(settings: solara.Reactive, model=None):
    """Scenario, seed and the schema's sliders; a note of what Reset will change."""
    s = settings.value
    name = s.get("scenario_name")
    values = dict(s.get("values") or {})
    names = scenario_names()

    def set_scenario(new: str):
        settings.value = {**settings.value, "scenario_name": new, "values": scenario_values(new)}

    def set_seed(seed):
        if seed is not None:
            settings.value = {**settings.value, "seed": int(seed)}

    def set_param(key, v):
        settings.value = {**settings.value, "values": {**(settings.value.get("values") or {}), key: v}}

    def restore():
        settings.value = {**settings.value, "values": scenario_values(settings.value["scenario_name"])}

    with solara.Card("Scenario", classes=["fourpl-card", "fourpl-controls"]):
        with solara.Div(classes=["fourpl-scenario-picker"]):
            solara.Select("Scenario", values=names, value=name if name in names else names[0], on_value=set_scenario)
        desc = scenario_description(name) if name else ""
        if desc:
            solara.Text(desc, style={"color": style.MUTED, "font-size": "0.85em"})
        with solara.Div(classes=["fourpl-seed"]):
            solara.InputInt("Seed", value=int(s.get("seed", 1)), on_value=set_seed, continuous_update=False)
        if model is not None:
            changes = pending_changes(s, model)
            if changes:
                solara.Warning("Press Reset to run with " + ", ".join(changes), dense=True,
                               classes=["fourpl-pending"])

    with solara.Card("Parameters", subtitle="from the scenario schema; hover for a description",
                     classes=["fourpl-card", "fourpl-params"]):
        section = None
        for p in ui_params():
            if p.section != section:
                section = p.section
                solara.Div(children=[SECTION_LABELS.get(section, section.replace("_", " ").capitalize())],
                           classes=["fourpl-param-section"])
            ParamControl(p, values.get(p.key, p.default), lambda v, key=p.key: set_param(key, v))
        base = scenario_values(name) if name in names else {}
        moved = [p.label for p in ui_params() if p.key in values and p.key in base and values[p.key] != base[p.key]]
        solara.Button("Scenario values", icon_name="mdi-restore", text=True, on_click=restore, disabled=not moved,
                      classes=["fourpl-restore"])
