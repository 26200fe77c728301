"""Numpy tables of the world's resources and routes, for the vectorized daily engine."""

from __future__ import annotations

import numpy as np

from market.world.customs import ClearanceTables
from market.world import EXPORT, HANDLING, IMPORT, MODES, REGIMES, TRANSPORT, World


class NetworkTables:
    """Resource and route attributes as arrays (routes padded to the longest route)."""

    def __init__(self, world: World, clearance: ClearanceTables):
        self.world = world
        self.modes = list(MODES)
        self.territories = world.territories
        R = len(world.resources)
        self.res_kind = np.array([r.kind for r in world.resources], dtype=np.int64)
        self.res_territory = np.array([world.territories.index(r.territory) for r in world.resources], dtype=np.int64)
        self.res_bulk = np.array([r.bulk for r in world.resources], dtype=bool)
        self.res_mode = np.full(R, -1, dtype=np.int64)
        self.res_tri = np.zeros((R, 3))
        self.res_delay = np.zeros(R)
        self.res_delay_tri = np.zeros((R, 3))
        self.res_loss = np.zeros(R)
        self.res_damage = np.zeros(R)
        self.res_regime = np.full(R, -1, dtype=np.int64)
        self.res_pool: list[str] = []
        for r in world.resources:
            if r.kind == TRANSPORT:
                ls = r.lane.spec
                self.res_mode[r.index] = MODES.index(ls.mode)
                self.res_tri[r.index] = ls.transit
                self.res_delay[r.index] = ls.delay
                self.res_delay_tri[r.index] = ls.delay_days
                self.res_loss[r.index] = ls.loss
                self.res_damage[r.index] = ls.damage
                self.res_pool.append(f"group:{ls.group}")
            elif r.kind == HANDLING:
                self.res_tri[r.index] = world.spec.warehouses[r.node].handling_days
                self.res_pool.append(f"wh:{r.node}")
            else:
                self.res_regime[r.index] = REGIMES.index(r.regime)
                self.res_pool.append(f"customs:{r.node}")

        S = max(rt.n_stages for rt in world.routes)
        self.max_stages = S
        n_routes = len(world.routes)
        self.route_res = np.full((n_routes, S), -1, dtype=np.int64)
        self.route_regime = np.zeros((n_routes, S), dtype=np.int64)
        self.route_handoff = np.zeros((n_routes, S), dtype=bool)   # a hand-off before stage s
        self.route_n = np.array([rt.n_stages for rt in world.routes], dtype=np.int64)
        self.route_channel = np.array([world.channels.index(rt.channel) for rt in world.routes], dtype=np.int64)
        self.route_bulk = np.array([rt.bulk for rt in world.routes], dtype=bool)
        # carrier groups that clear their own parcels: no hand-off between their lanes and the
        # customs stages next to them
        in_house = {f"group:{g}" for g, spec in world.spec.carrier_groups.items() if spec.customs_in_house}
        customs = [k in (EXPORT, IMPORT) for k in self.res_kind]
        for rt in world.routes:
            self.route_res[rt.index, : rt.n_stages] = rt.resources
            for s, g in enumerate(rt.regimes):
                self.route_regime[rt.index, s] = REGIMES.index(g) if g else 0
            pools = [self.res_pool[r] for r in rt.resources]
            for s, r in enumerate(rt.resources):
                if customs[r]:
                    near = [pools[j] for j in (s - 1, s + 1) if 0 <= j < rt.n_stages and not customs[rt.resources[j]]]
                    if near and all(p == near[0] for p in near) and near[0] in in_house:
                        pools[s] = near[0]
            for s in range(1, rt.n_stages):
                self.route_handoff[rt.index, s] = pools[s] != pools[s - 1]

        self.clearance = clearance
        self.refresh_expected_days()
        self.route_handoffs = self.route_handoff.sum(axis=1)
        self.refresh_risk()

    def refresh_risk(self):
        """Chance a parcel is lost or damaged somewhere along each route (``route_risk``), and chance
        it is lost (``route_loss``: what a bulk consignment risks), from today's lane risks."""
        risk = np.minimum(self.res_loss + self.res_damage, 1.0)
        self.route_risk = np.array([1.0 - np.prod(1.0 - risk[rt.resources]) for rt in self.world.routes])
        self.route_loss = np.array([1.0 - np.prod(1.0 - self.res_loss[rt.resources]) for rt in self.world.routes])

    def refresh_expected_days(self):
        """Expected days of each stage and route, from today's transit and clearance times."""
        world, clearance = self.world, self.clearance
        # expected stage days (means of the triangular draws, with delay, inspection and holds)
        mean = self.res_tri.mean(axis=1)
        exp_days = mean + self.res_delay * self.res_delay_tri.mean(axis=1)
        for r in world.resources:
            t = self.res_territory[r.index]
            if r.kind == EXPORT:
                exp_days[r.index] = clearance.export_clearance[t].mean() + 0.02 * clearance.hold_days[t].mean()
            elif r.kind == IMPORT:
                g = self.res_regime[r.index]
                exp_days[r.index] = (clearance.clearance[t, g].mean()
                                     + clearance.inspection[t, g] * clearance.inspection_days[t].mean()
                                     + 0.02 * clearance.hold_days[t].mean())
        self.res_expected_days = exp_days
        self.route_expected_days = np.array([exp_days[rt.resources].sum() for rt in world.routes])

    def check_customs(self, clearance: ClearanceTables):
        """Every import stage of every route has a clearance time for its regime."""
        bad = []
        for r in self.world.resources:
            if r.kind == IMPORT:
                t, g = self.res_territory[r.index], self.res_regime[r.index]
                if REGIMES[g] != "domestic" and not clearance.has_clearance[t, g]:
                    bad.append(f"{r.territory}/{r.regime}")
        return sorted(set(bad))
