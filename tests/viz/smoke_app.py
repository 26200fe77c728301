"""A throwaway SolaraViz page used to prove the viz test harness works.

It is deliberately tiny and independent of the project's real model: a handful of
agents on a network space (drawn with the altair backend, so the page needs the
vega assets), a matplotlib time-series plot made with ``make_plot_component``
(served as a PNG), and one custom ``@solara.component``.

Serve it with ``solara run tests/viz/smoke_app.py`` (or ``viz.serve.serve``).
Tests import it by file path, it is not part of a package.
"""

from __future__ import annotations

import networkx as nx
import solara
from mesa import DataCollector, Model
from mesa.discrete_space import CellAgent, Network
from mesa.visualization import Slider, SolaraViz, SpaceRenderer, make_plot_component
from mesa.visualization.components import AgentPortrayalStyle
from mesa.visualization.utils import update_counter

COUNTER_CLASS = "smoke-step-counter"
COUNTER_PREFIX = "Smoke steps:"


class Trader(CellAgent):
    """Holds some stock and hands one unit to a random neighbour each step."""

    def __init__(self, model: Model, cell, stock: int):
        super().__init__(model)
        self.cell = cell
        self.stock = stock

    def step(self) -> None:
        if self.stock <= 0:
            return
        neighbours = [a for c in self.cell.neighborhood for a in c.agents]
        if neighbours:
            self.random.choice(neighbours).stock += 1
            self.stock -= 1


def total_stock(model: "SmokeModel") -> int:
    return sum(model.agents.get("stock"))


def max_stock(model: "SmokeModel") -> int:
    return max(model.agents.get("stock"))


def min_stock(model: "SmokeModel") -> int:
    return min(model.agents.get("stock"))


class SmokeModel(Model):
    """A ring-with-chords network of a few nodes, one trader per node."""

    def __init__(self, num_nodes: int = 6, initial_stock: int = 5, rng=42):
        super().__init__(rng=rng)
        graph = nx.connected_watts_strogatz_graph(num_nodes, 2, 0.3, seed=int(self.rng.integers(1 << 31)))
        self.grid = Network(graph, capacity=1, random=self.random)
        for i, cell in enumerate(self.grid.all_cells):
            # uneven start so that max and min move visibly
            Trader(self, cell, initial_stock + (i % 3) * 2)
        self.datacollector = DataCollector({"Total": total_stock, "Max": max_stock, "Min": min_stock})
        self.datacollector.collect(self)

    def step(self) -> None:
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)


def agent_portrayal(agent: Trader) -> AgentPortrayalStyle:
    return AgentPortrayalStyle(color="tab:orange" if agent.stock > 5 else "tab:blue", size=60)


@solara.component
def StepCounter(model: SmokeModel):
    """The custom component: the model's step count, in an element tests can find."""
    update_counter.get()
    with solara.Card("Smoke counter", classes=["smoke-counter-card"]), solara.Column(gap="4px"):
        solara.Text(f"{COUNTER_PREFIX} {model.steps}", classes=[COUNTER_CLASS])
        solara.Markdown(f"Total stock: **{total_stock(model)}**")


model_params = {
    "num_nodes": Slider("Nodes", 6, 3, 12, 1),
    "initial_stock": Slider("Initial stock", 5, 1, 10, 1),
}

model = SmokeModel()
renderer = SpaceRenderer(model, backend="altair").setup_structure().setup_agents(agent_portrayal)
renderer.render()

StockPlot = make_plot_component({"Max": "tab:red", "Min": "tab:green"})

page = SolaraViz(
    model,
    renderer,
    components=[StockPlot, StepCounter],
    model_params=model_params,
    name="Viz smoke test",
)
page  # noqa: B018
