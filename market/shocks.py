"""Scheduled shocks: disruptions and policy changes written in the scenario, applied on their dates.

Each day the set of shocks in force is compared with yesterday's; when it changes, every
affected quantity is recomputed from its base value times the factors of the shocks now in
force, so overlapping shocks compose and an ended shock leaves no trace.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from market.scenario import ScenarioError, Shock
from market.world import EXPORT, IMPORT, MODES, REGIMES, TRANSPORT, DutyRuleSpec

if TYPE_CHECKING:
    from market.model import Marketplace

NEVER = 10 ** 9


class ShockBoard:
    """The scenario's shocks, resolved against the world, and what is in force today."""

    def __init__(self, model: Marketplace):
        self.m = model
        self.shocks: list[Shock] = list(model.config.shocks)
        w, net = model.world, model.net
        start = model.config.simulation.start_date
        self.start_day, self.end_day, self.res_mask = [], [], []
        self.terr_mask, self.regime_mask, self.market_mask = [], [], []
        for s in self.shocks:
            d0 = (s.start - start).days if s.start is not None else s.day
            self.start_day.append(d0)
            self.end_day.append(d0 + s.days if s.days else NEVER)
            self._check_names(s)
            self.res_mask.append(self._resources(s))
            self.terr_mask.append(self._mask(s.territories, w.territories))
            self.regime_mask.append(self._mask(s.regimes, list(REGIMES)))
            self.market_mask.append(self._mask(s.markets, w.markets))
            if s.kind in ("capacity", "transit", "risk", "cost") and not self.res_mask[-1].any():
                raise ScenarioError(f"shock '{s.name}': its selectors match no lane, warehouse or customs point")
            if s.kind in ("transit", "risk") and not (self.res_mask[-1] & (net.res_kind == TRANSPORT)).any():
                raise ScenarioError(f"shock '{s.name}': a {s.kind} shock must select lanes")
            if s.kind == "duty_rule":
                bad = set(s.rule) - set(DutyRuleSpec.model_fields) - {"start"}
                if bad:
                    raise ScenarioError(f"shock '{s.name}': unknown duty rule field(s) {sorted(bad)} "
                                        f"(allowed: {', '.join(f for f in DutyRuleSpec.model_fields if f != 'start')})")
                validate_rule_patch(s.rule, f"shock '{s.name}'")
        # base values the shocks scale
        o, ct = model.offers, model.clearance
        self.base = {
            "capacity": o.capacity.copy(), "cost_parcel": o.cost_parcel.copy(), "cost_kg": o.cost_kg.copy(),
            "cost_shipment": o.cost_shipment.copy(), "cost_storage": o.cost_storage.copy(),
            "res_tri": net.res_tri.copy(), "res_loss": net.res_loss.copy(), "res_damage": net.res_damage.copy(),
            "clearance": ct.clearance.copy(),
            "export_clearance": ct.export_clearance.copy(), "inspection": ct.inspection.copy(),
        }
        self.active: tuple[int, ...] = ()
        # capacity cut, transit stretched or loss risk raised today (the map marks these)
        self.disrupted = np.zeros(len(w.resources), dtype=bool)
        self.demand = np.ones(len(w.markets))
        self.allowed_channels: set[str] | None = None

    # ---- resolving selectors ----
    def _check_names(self, s: Shock):
        w = self.m.world
        known = {"modes": list(MODES), "nodes": list(w.graph.nodes), "territories": w.territories,
                 "markets": w.markets, "regimes": list(REGIMES), "channels": w.channels}
        for field, allowed in known.items():
            for name in getattr(s, field):
                if name not in allowed:
                    raise ScenarioError(f"shock '{s.name}': unknown {field[:-1]} '{name}' "
                                        f"(known: {', '.join(allowed)})")
        for pat in s.lanes:
            if not any(fnmatch.fnmatchcase(ln.id, pat) for ln in w.lanes):
                raise ScenarioError(f"shock '{s.name}': no lane matches '{pat}' (lane ids look like "
                                    f"'{w.lanes[0].id}')")

    @staticmethod
    def _mask(names, universe) -> np.ndarray:
        if not names:
            return np.ones(len(universe), dtype=bool)
        return np.isin(np.array(universe, dtype=object), np.array(names, dtype=object))

    def _resources(self, s: Shock) -> np.ndarray:
        w, net = self.m.world, self.m.net
        keep = np.ones(len(w.resources), dtype=bool)
        for r in w.resources:
            ok = True
            lane = r.lane
            if s.lanes:
                ok &= lane is not None and any(fnmatch.fnmatchcase(lane.id, p) for p in s.lanes)
            if s.modes:
                ok &= lane is not None and lane.spec.mode in s.modes
            if s.nodes:
                if lane is not None:
                    ok &= lane.u in s.nodes or lane.v in s.nodes
                else:
                    ok &= r.node in s.nodes
            if s.territories:
                ok &= r.territory in s.territories
            if s.regimes:
                ok &= r.kind in (EXPORT, IMPORT) and r.regime in s.regimes
            keep[r.index] = ok
        if s.kind in ("transit", "risk"):
            keep &= net.res_kind == TRANSPORT
        return keep

    # ---- the day ----
    def update(self, day: int) -> bool:
        """Bring the world to the shocks in force on ``day``; True if anything changed."""
        active = tuple(i for i in range(len(self.shocks)) if self.start_day[i] <= day < self.end_day[i])
        if active == self.active:
            return False
        before_channels = self.allowed_channels
        self.active = active
        m, o, net, ct, b = self.m, self.m.offers, self.m.net, self.m.clearance, self.base
        R, T, G = len(m.world.resources), len(m.world.territories), len(REGIMES)
        cap, cost, transit, risk = np.ones(R), np.ones(R), np.ones(R), np.ones(R)
        clear, insp = np.ones((T, G)), np.ones((T, G))
        demand = np.ones(len(m.world.markets))
        patches: dict[str, list[dict]] = {}
        channels = None
        for i in active:
            s = self.shocks[i]
            if s.kind == "capacity":
                cap[self.res_mask[i]] *= s.factor
            elif s.kind == "cost":
                cost[self.res_mask[i]] *= s.factor
            elif s.kind == "transit":
                transit[self.res_mask[i]] *= s.factor
            elif s.kind == "risk":
                risk[self.res_mask[i]] *= s.factor
            elif s.kind in ("clearance", "inspection"):
                grid = np.outer(self.terr_mask[i], self.regime_mask[i])
                (clear if s.kind == "clearance" else insp)[grid] *= s.factor
            elif s.kind == "demand":
                demand[self.market_mask[i]] *= s.factor
            elif s.kind == "duty_rule":
                for t in s.territories:
                    patches.setdefault(t, []).append(s.rule)
            elif s.kind == "channels":
                channels = set(s.channels)
        on = o.resource
        o.capacity[:] = b["capacity"] * cap[on]
        for k in ("cost_parcel", "cost_kg", "cost_shipment", "cost_storage"):
            getattr(o, k)[:] = b[k] * cost[on]
        net.res_tri[:] = b["res_tri"] * transit[:, None]
        # in place: the flow engine holds these arrays
        net.res_loss[:] = np.minimum(b["res_loss"] * risk, 1.0)
        net.res_damage[:] = np.minimum(b["res_damage"] * risk, 1.0 - net.res_loss)
        net.refresh_risk()
        ct.clearance[:] = b["clearance"] * clear[:, :, None]
        ct.export_clearance[:] = b["export_clearance"] * clear.min(axis=1)[:, None]
        ct.inspection[:] = np.minimum(b["inspection"] * insp, 1.0)
        self.disrupted = (cap < 1.0) | (transit > 1.0) | (risk > 1.0)
        net.refresh_expected_days()          # planners see today's transit and clearance times
        self.demand = demand
        m.world.rule_patches = patches
        self.allowed_channels = channels
        if channels != before_channels:
            m.channels_changed()
        return True

    def reapply(self):
        """Recompute today's state from the base values (after capacity changed or offers were added)."""
        o = self.m.offers
        n_new = o.n - self.base["capacity"].size
        if n_new > 0:
            for k in ("capacity", "cost_parcel", "cost_kg", "cost_shipment", "cost_storage"):
                self.base[k] = np.concatenate([self.base[k], getattr(o, k)[-n_new:]])
        self.active = ("stale",)
        self.update(self.m.day)

    def names_in_force(self) -> str:
        return "; ".join(self.shocks[i].name for i in self.active)


def validate_rule_patch(patch: dict, where: str):
    try:
        DutyRuleSpec.model_validate({"start": dt.date(2000, 1, 1), "source": "shock", **patch})
    except ValidationError as exc:
        raise ScenarioError(f"{where}: {exc.errors()[0]['msg']} in rule field "
                            f"'{'.'.join(str(x) for x in exc.errors()[0]['loc'])}'") from None
