"""Scheduled shocks: disruptions and policy changes written in the scenario, applied on their dates.

Each day the set of shocks in force is compared with yesterday's; when it changes, every
affected quantity is recomputed from its base value times the factors of the shocks now in
force, so overlapping shocks compose and an ended shock leaves no trace. A capacity shock with
``recovery_days`` stays in force, weaker each day, while carriers restore the capacity: on the
k-th day after it ends the capacity is factor + (1 - factor) x k / recovery_days of its base.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from market.scenario import CURRENCIES, ScenarioError, Shock
from market.world import EXPORT, IMPORT, MODES, REGIMES, TRANSPORT, DutyRuleSpec

if TYPE_CHECKING:
    from market.model import Marketplace

NEVER = 10 ** 9


class ShockBoard:
    """The scenario's shocks, resolved against the world, and what is in force today.

    Takes the model because a shock changes the market in place: offers' capacity and costs
    in the offer book, transit times and risks in the network tables, clearance times and
    inspection rates in the customs tables, the duty rules of the world, demand by market and
    the channels merchants may use (it tells the model when those change, so merchants on a
    forbidden channel move). It resolves each shock's selectors against the world and keeps
    the base values it scales.
    """

    def __init__(self, model: Marketplace):
        self.model = model
        self.shocks: list[Shock] = list(model.config.shocks)
        world, net = model.world, model.net
        start = model.config.simulation.start_date
        self.start_day, self.end_day, self.res_mask = [], [], []
        self.recovery_days = [shock.recovery_days or 0 for shock in self.shocks]
        self.terr_mask, self.regime_mask, self.market_mask = [], [], []
        for shock in self.shocks:
            d0 = (shock.start - start).days if shock.start is not None else shock.day
            self.start_day.append(d0)
            self.end_day.append(d0 + shock.days if shock.days else NEVER)
            self._check_names(shock)
            self.res_mask.append(self._resources(shock))
            self.terr_mask.append(self._mask(shock.territories, world.territories))
            self.regime_mask.append(self._mask(shock.regimes, list(REGIMES)))
            self.market_mask.append(self._mask(shock.markets, world.markets))
            if shock.kind in ("capacity", "transit", "risk", "cost") and not self.res_mask[-1].any():
                raise ScenarioError(f"shock '{shock.name}': its selectors match no lane, warehouse or customs point")
            if shock.kind in ("transit", "risk") and not (self.res_mask[-1] & (net.res_kind == TRANSPORT)).any():
                raise ScenarioError(f"shock '{shock.name}': a {shock.kind} shock must select lanes")
            if shock.kind == "duty_rule":
                bad = set(shock.rule) - set(DutyRuleSpec.model_fields) - {"start"}
                if bad:
                    raise ScenarioError(f"shock '{shock.name}': unknown duty rule field(s) {sorted(bad)} "
                                        f"(allowed: {', '.join(f for f in DutyRuleSpec.model_fields if f != 'start')})")
                validate_rule_patch(shock.rule, f"shock '{shock.name}'")
        # base values the shocks scale
        offers, clearance = model.offers, model.clearance
        self.base = {
            "capacity": offers.capacity.copy(), "cost_parcel": offers.cost_parcel.copy(),
            "cost_kg": offers.cost_kg.copy(),
            "cost_shipment": offers.cost_shipment.copy(), "cost_storage": offers.cost_storage.copy(),
            "res_tri": net.res_tri.copy(), "res_loss": net.res_loss.copy(), "res_damage": net.res_damage.copy(),
            "clearance": clearance.clearance.copy(),
            "export_clearance": clearance.export_clearance.copy(), "inspection": clearance.inspection.copy(),
        }
        self.active: tuple[int, ...] = ()      # shocks in force today (recovering ones too)
        self.state: tuple = ()                   # (shock, day of its recovery or 0) in force today
        # capacity cut, transit stretched or loss risk raised today (the map marks these)
        self.disrupted = np.zeros(len(world.resources), dtype=bool)
        self.demand = np.ones(len(world.markets))
        self.allowed_channels: set[str] | None = None

    # ---- resolving selectors ----
    def _check_names(self, shock: Shock):
        world = self.model.world
        known = {"modes": list(MODES), "nodes": list(world.graph.nodes), "territories": world.territories,
                 "markets": world.markets, "regimes": list(REGIMES), "channels": world.channels}
        for field, allowed in known.items():
            for name in getattr(shock, field):
                if name not in allowed:
                    raise ScenarioError(f"shock '{shock.name}': unknown {field[:-1]} '{name}' "
                                        f"(known: {', '.join(allowed)})")
        for pat in shock.lanes:
            if not any(fnmatch.fnmatchcase(ln.id, pat) for ln in world.lanes):
                raise ScenarioError(f"shock '{shock.name}': no lane matches '{pat}' (lane ids look like "
                                    f"'{world.lanes[0].id}')")

    @staticmethod
    def _mask(names, universe) -> np.ndarray:
        if not names:
            return np.ones(len(universe), dtype=bool)
        return np.isin(np.array(universe, dtype=object), np.array(names, dtype=object))

    def _resources(self, shock: Shock) -> np.ndarray:
        world, net = self.model.world, self.model.net
        keep = np.ones(len(world.resources), dtype=bool)
        for r in world.resources:
            ok = True
            lane = r.lane
            if shock.lanes:
                ok &= lane is not None and any(fnmatch.fnmatchcase(lane.id, p) for p in shock.lanes)
            if shock.modes:
                ok &= lane is not None and lane.spec.mode in shock.modes
            if shock.nodes:
                if lane is not None:
                    ok &= lane.u in shock.nodes or lane.v in shock.nodes
                else:
                    ok &= r.node in shock.nodes
            if shock.territories:
                ok &= r.territory in shock.territories
            if shock.regimes:
                ok &= r.kind in (EXPORT, IMPORT) and r.regime in shock.regimes
            keep[r.index] = ok
        if shock.kind in ("transit", "risk"):
            keep &= net.res_kind == TRANSPORT
        return keep

    # ---- the day ----
    def recovery_step(self, i: int, day: int) -> int | None:
        """For shock ``i`` on ``day``: 0 while it is in force, k on the k-th day of its
        recovery (1 on the day it ends), None when it has no effect."""
        if self.start_day[i] <= day < self.end_day[i]:
            return 0
        k = day - self.end_day[i] + 1
        if self.end_day[i] <= day and k < self.recovery_days[i]:
            return k
        return None

    def factor_on(self, i: int, step: int) -> float:
        """Shock ``i``'s factor on a day of its ``step`` (0: in force; k: the k-th day of recovery)."""
        factor = self.shocks[i].factor
        if step == 0:
            return factor
        return factor + (1.0 - factor) * step / self.recovery_days[i]

    def update(self, day: int) -> bool:
        """Bring the world to the shocks in force on ``day``; True if anything changed."""
        state = tuple((i, k) for i in range(len(self.shocks)) if (k := self.recovery_step(i, day)) is not None)
        if state == self.state:
            return False
        before_channels = self.allowed_channels
        self.state = state
        self.active = active = tuple(i for i, _ in state)
        model, offers, net, clearance, base = self.model, self.model.offers, self.model.net, self.model.clearance, \
            self.base
        R, T, G = len(model.world.resources), len(model.world.territories), len(REGIMES)
        cap, cost, transit, risk = np.ones(R), np.ones(R), np.ones(R), np.ones(R)
        clear, insp = np.ones((T, G)), np.ones((T, G))
        demand = np.ones(len(model.world.markets))
        currency = np.ones(len(CURRENCIES))
        patches: dict[str, list[dict]] = {}
        channels = None
        for i, step in state:
            shock = self.shocks[i]
            if shock.kind == "capacity":
                cap[self.res_mask[i]] *= self.factor_on(i, step)
            elif shock.kind == "cost":
                cost[self.res_mask[i]] *= shock.factor
            elif shock.kind == "transit":
                transit[self.res_mask[i]] *= shock.factor
            elif shock.kind == "risk":
                risk[self.res_mask[i]] *= shock.factor
            elif shock.kind in ("clearance", "inspection"):
                grid = np.outer(self.terr_mask[i], self.regime_mask[i])
                (clear if shock.kind == "clearance" else insp)[grid] *= shock.factor
            elif shock.kind == "demand":
                demand[self.market_mask[i]] *= shock.factor
            elif shock.kind == "duty_rule":
                for t in shock.territories:
                    patches.setdefault(t, []).append(shock.rule)
            elif shock.kind == "channels":
                channels = set(shock.channels)
            elif shock.kind == "currency":
                currency[[CURRENCIES.index(c) for c in shock.currencies]] *= shock.factor
        on = offers.resource
        offers.capacity[:] = base["capacity"] * cap[on]
        for k in ("cost_parcel", "cost_kg", "cost_shipment", "cost_storage"):
            getattr(offers, k)[:] = base[k] * cost[on]
        net.res_tri[:] = base["res_tri"] * transit[:, None]
        # in place: the flow engine holds these arrays
        net.res_loss[:] = np.minimum(base["res_loss"] * risk, 1.0)
        net.res_damage[:] = np.minimum(base["res_damage"] * risk, 1.0 - net.res_loss)
        net.refresh_risk()
        clearance.clearance[:] = base["clearance"] * clear[:, :, None]
        clearance.export_clearance[:] = base["export_clearance"] * clear.min(axis=1)[:, None]
        clearance.inspection[:] = np.minimum(base["inspection"] * insp, 1.0)
        self.disrupted = (cap < 1.0) | (transit > 1.0) | (risk > 1.0)
        net.refresh_expected_days()          # planners see today's transit and clearance times
        self.demand = demand
        model.rates.set_shock(currency)      # a devaluation moves the currency's level at once
        model.world.rule_patches = patches
        self.allowed_channels = channels
        if channels != before_channels:
            model.channels_changed()
        return True

    def reapply(self):
        """Recompute today's state from the base values (after capacity changed or offers were added)."""
        offers = self.model.offers
        n_new = offers.n - self.base["capacity"].size
        if n_new > 0:
            for k in ("capacity", "cost_parcel", "cost_kg", "cost_shipment", "cost_storage"):
                self.base[k] = np.concatenate([self.base[k], getattr(offers, k)[-n_new:]])
        self.state = ("stale",)
        self.update(self.model.day)

    def names_in_force(self) -> str:
        """The names of the shocks in force, separated by "; " (empty when none); a shock whose
        capacity is coming back is named with "(recovering)"."""
        return "; ".join(self.shocks[i].name + (" (recovering)" if k else "") for i, k in self.state)


def validate_rule_patch(patch: dict, where: str):
    """Check a duty-rule shock's fields against the duty rule schema; raise a ScenarioError
    naming ``where`` and the field if a value is invalid."""
    try:
        DutyRuleSpec.model_validate({"start": dt.date(2000, 1, 1), "source": "shock", **patch})
    except ValidationError as exc:
        raise ScenarioError(f"{where}: {exc.errors()[0]['msg']} in rule field "
                            f"'{'.'.join(str(x) for x in exc.errors()[0]['loc'])}'") from None
