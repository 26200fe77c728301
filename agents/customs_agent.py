"""Customs agent: a broker at a customs point with filing capacity, a fee and an accuracy;
a filing error puts the parcel or consignment on hold."""

from __future__ import annotations

from agents.provider import Provider


class CustomsAgent(Provider):
    """A customs broker at one customs point (node and territory)."""

    role = "customs_agent"

    def __init__(self, model, name: str, node: str, territory: str, cost_factor: float,
                 accuracy: float):
        super().__init__(model, name, group=f"customs:{node}")
        self.node = node
        self.territory = territory
        self.cost_factor = cost_factor
        self.accuracy = accuracy
