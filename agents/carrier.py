"""Carrier: a 3PL serving lanes of one mode (postal, express air, dedicated line, sea, rail,
truck, last mile) with daily capacity, its own cost, speed and reliability."""

from __future__ import annotations

from agents.provider import Provider


class Carrier(Provider):
    """A 3PL carrier company of a carrier group (e.g. one of the express integrators)."""

    role = "carrier"

    def __init__(self, model, name: str, group: str, cost_factor: float, speed: float,
                 reliability: float):
        super().__init__(model, name, group)
        self.cost_factor = cost_factor
        self.speed = speed
        self.reliability = reliability   # multiplies the lane's delay and loss risks
