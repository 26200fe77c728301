"""Warehouse operator: runs a share of an overseas, border or bonded warehouse (storage space,
pick-and-pack throughput), prices storage and handling cost-plus, and adds space where its
warehouse had to turn stock away."""

from __future__ import annotations

import numpy as np

from agents.provider import Provider


class WarehouseOperator(Provider):
    """An operator at one warehouse node."""

    role = "warehouse_operator"

    def __init__(self, model, name: str, node: str, cost_factor: float):
        super().__init__(model, name, group=f"wh:{node}")
        self.node = node
        self.cost_factor = cost_factor


def add_space_where_stock_was_turned_away(model, turned_away: np.ndarray, peak_held: np.ndarray) -> bool:
    """Where a warehouse turned stock away in the period (``turned_away`` units per warehouse),
    its operators add space: part (``evolution.capacity_step``) of the way to what would have held
    the period's peak (``peak_held``) plus what was turned away at the top of the utilisation
    band, shared pro rata to their space. Returns whether any space was added."""
    offers = model.offers
    hi = model.config.carriers.utilisation_target[1]
    space = model.inventory.space()
    grown = False
    for w in np.flatnonzero(turned_away > 0):
        target = (peak_held[w] + turned_away[w]) / hi
        add = model.config.evolution.capacity_step * max(target - space[w], 0.0)
        operators = offers.by_resource.get(model.handling_resource[model.warehouse_nodes[w]])
        operators = operators[offers.active[operators]] if operators is not None else operators
        if add <= 0 or operators is None or not operators.size or space[w] <= 0:
            continue
        offers.storage_capacity[operators] *= 1.0 + add / space[w]
        grown = True
    return grown
