"""Warehouse operator: runs a share of an overseas, border or bonded warehouse (storage space,
pick-and-pack throughput) and prices storage and handling cost-plus."""

from __future__ import annotations

from agents.provider import Provider


class WarehouseOperator(Provider):
    """An operator at one warehouse node."""

    role = "warehouse_operator"

    def __init__(self, model, name: str, node: str, cost_factor: float):
        super().__init__(model, name, group=f"wh:{node}")
        self.node = node
        self.cost_factor = cost_factor
