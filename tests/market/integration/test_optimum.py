import math

import networkx as nx
import numpy as np
import pytest

from market.integration.optimum import (
    Commodity,
    default_unserved_penalty,
    integration_efficiency,
    min_cost_multicommodity_flow,
    routing_cost,
)
from market.integration.composition import pareto_services


def random_network(rng, n, m, *, inf_share=0.2):
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(n))
    for _ in range(m):
        u, v = (int(x) for x in rng.choice(n, size=2, replace=False))
        cap = math.inf if rng.random() < inf_share else float(rng.integers(1, 15))
        G.add_edge(u, v, cost=float(rng.integers(1, 10)), time=float(rng.integers(1, 6)), risk=0.0, capacity=cap)
    return G


def split_parallel_legs(G):
    """DiGraph for networkx flow routines: each leg becomes u -> (u,v,k) -> v."""
    D = nx.DiGraph()
    D.add_nodes_from(G.nodes)
    for u, v, k, d in G.edges(keys=True, data=True):
        mid = ("leg", u, v, k)
        attrs = {} if math.isinf(d["capacity"]) else {"capacity": int(d["capacity"])}
        D.add_edge(u, mid, cost=int(d["cost"]), **attrs)
        D.add_edge(mid, v, cost=0, **attrs)
    return D


def check_flow_is_valid(G, sol, tol=1e-6):
    """Conservation per commodity and shared capacity per leg."""
    load = {}
    for c, flow, unserved in zip(sol.commodities, sol.flows, sol.unserved):
        net = {}
        for (u, v, k), f in flow.items():
            assert f >= -tol
            net[u] = net.get(u, 0.0) + f
            net[v] = net.get(v, 0.0) - f
            load[(u, v, k)] = load.get((u, v, k), 0.0) + f
        served = c.volume - unserved
        if c.source != c.target:
            assert net.pop(c.source, 0.0) == pytest.approx(served, abs=tol)
            assert net.pop(c.target, 0.0) == pytest.approx(-served, abs=tol)
        assert all(abs(x) < tol for x in net.values())
    for leg, f in load.items():
        assert f <= G.edges[leg]["capacity"] + tol
        assert sol.edge_load[leg] == pytest.approx(f)


@pytest.mark.parametrize("seed", range(25))
def test_single_commodity_matches_networkx(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 9))
    G = random_network(rng, n, int(rng.integers(2 * n, 4 * n)))
    s, t = 0, n - 1
    D = split_parallel_legs(G)
    volume = int(rng.integers(1, 40))
    sol = min_cost_multicommodity_flow(G, [(s, t, volume)])
    check_flow_is_valid(G, sol)

    try:
        max_flow = nx.maximum_flow_value(D, s, t)
    except nx.NetworkXUnbounded:
        max_flow = math.inf
    if math.isinf(max_flow) or volume <= max_flow:
        # enough capacity: plain min-cost flow with node demands
        for node in D:
            D.nodes[node]["demand"] = 0
        D.nodes[s]["demand"], D.nodes[t]["demand"] = -volume, volume
        want = nx.min_cost_flow_cost(D, weight="cost")
        assert sol.feasible
        assert sol.total_cost == pytest.approx(want)
        assert sol.routing_cost == pytest.approx(want)
    else:
        # not enough: the penalty makes the optimum the min-cost maximum flow
        flow = nx.max_flow_min_cost(D, s, t, weight="cost")
        want = nx.cost_of_flow(D, flow, weight="cost")
        assert not sol.feasible
        assert sol.served[0] == pytest.approx(max_flow)
        assert sol.unserved[0] == pytest.approx(volume - max_flow)
        assert sol.routing_cost == pytest.approx(want)
        assert sol.unserved_cost == pytest.approx(sol.unserved_penalty * (volume - max_flow))


@pytest.mark.parametrize("seed", range(20))
def test_arc_and_path_formulations_agree(seed):
    # A time limit no route can exceed turns a commodity into path flows; the
    # optimum must not change, which cross-checks both formulations.
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 8))
    G = random_network(rng, n, int(rng.integers(2 * n, 3 * n + 2)))
    comms = []
    for _ in range(int(rng.integers(2, 5))):
        s, t = (int(x) for x in rng.choice(n, size=2, replace=False))
        comms.append(Commodity(s, t, float(rng.integers(1, 20))))
    arc = min_cost_multicommodity_flow(G, comms)
    loose = sum(d["time"] for *_, d in G.edges(keys=True, data=True)) + 1
    path = min_cost_multicommodity_flow(G, [Commodity(c.source, c.target, c.volume, max_time=loose) for c in comms])
    check_flow_is_valid(G, arc)
    check_flow_is_valid(G, path)
    assert path.total_cost == pytest.approx(arc.total_cost)
    assert path.unserved_volume == pytest.approx(arc.unserved_volume)
    for pf, served in zip(path.path_flows, path.served):
        assert sum(pf.values()) == pytest.approx(served)


def test_time_limit_forces_faster_route():
    G = nx.MultiDiGraph()
    G.add_edge("SZX", "RTM", key="sea", cost=1.0, time=30.0, capacity=math.inf)
    G.add_edge("SZX", "LEJ", key="air", cost=5.0, time=2.0, capacity=6.0)
    G.add_edge("SZX", "DUI", key="rail", cost=3.0, time=16.0, capacity=4.0)
    for hub in ("RTM", "LEJ", "DUI"):
        G.add_edge(hub, "BER", key="road", cost=1.0, time=1.0, capacity=math.inf)
    slow = min_cost_multicommodity_flow(G, [Commodity("SZX", "BER", 10)])
    assert slow.routing_cost == pytest.approx(20.0)  # all by sea
    fast = min_cost_multicommodity_flow(G, [Commodity("SZX", "BER", 10, max_time=20)])
    # rail fills up (4), air takes the rest (6); sea is too slow
    assert fast.routing_cost == pytest.approx(4 * 4 + 6 * 6)
    assert fast.feasible
    assert sorted(fast.path_flows[0].values()) == pytest.approx([4.0, 6.0])
    tight = min_cost_multicommodity_flow(G, [Commodity("SZX", "BER", 10, max_time=5)])
    assert tight.unserved[0] == pytest.approx(4.0)  # only air is fast enough
    assert tight.routing_cost == pytest.approx(36.0)
    impossible = min_cost_multicommodity_flow(G, [("SZX", "BER", 10, 1.0)])
    assert impossible.unserved[0] == pytest.approx(10.0) and impossible.routing_cost == 0.0


@pytest.mark.parametrize("seed", range(15))
def test_time_limited_optimum_matches_enumeration_when_uncapacitated(seed):
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(4, 8))
    G = random_network(rng, n, int(rng.integers(2 * n, 4 * n)), inf_share=1.0)
    limit = float(rng.integers(3, 12))
    paths = list(nx.all_simple_edge_paths(G, 0, n - 1))
    ok = [p for p in paths if sum(G.edges[e]["time"] for e in p) <= limit]
    sol = min_cost_multicommodity_flow(G, [Commodity(0, n - 1, 7.0, max_time=limit)])
    if ok:
        best = min(sum(G.edges[e]["cost"] for e in p) for p in ok)
        assert sol.feasible and sol.routing_cost == pytest.approx(7.0 * best)
        for route in sol.path_flows[0]:
            assert sum(G.edges[e]["time"] for e in route) <= limit
    else:
        assert sol.unserved[0] == pytest.approx(7.0)


def test_shared_capacity_couples_commodities_and_integer_flows():
    # Two commodities compete for one cheap leg of capacity 5.
    G = nx.MultiDiGraph()
    G.add_edge("A", "H", cost=1.0, capacity=math.inf)
    G.add_edge("B", "H", cost=1.0, capacity=math.inf)
    G.add_edge("H", "Z", key="cheap", cost=1.0, capacity=5.0)
    G.add_edge("A", "Z", key="directA", cost=4.0, capacity=math.inf)
    G.add_edge("B", "Z", key="directB", cost=10.0, capacity=math.inf)
    comms = [("A", "Z", 4.0), ("B", "Z", 4.0)]
    sol = min_cost_multicommodity_flow(G, comms)
    check_flow_is_valid(G, sol)
    # B gains more from the hub (10 vs 2) than A (4 vs 2): B gets 4, A gets 1
    assert sol.flows[1][("H", "Z", "cheap")] == pytest.approx(4.0)
    assert sol.flows[0][("H", "Z", "cheap")] == pytest.approx(1.0)
    assert sol.routing_cost == pytest.approx(4 * 2 + 1 * 2 + 3 * 4)
    # fractional capacity: LP splits, MILP rounds to whole parcels and costs more
    G.edges["H", "Z", "cheap"]["capacity"] = 4.5
    lp = min_cost_multicommodity_flow(G, comms)
    ip = min_cost_multicommodity_flow(G, comms, integer=True)
    assert lp.flows[0][("H", "Z", "cheap")] == pytest.approx(0.5)
    assert ip.total_cost > lp.total_cost
    assert all(float(f).is_integer() or abs(f - round(f)) < 1e-6 for flow in ip.flows for f in flow.values())


def test_unserved_penalty_and_edge_cases():
    G = nx.MultiDiGraph()
    G.add_edge("A", "B", cost=3.0, capacity=2.0, mode="air")
    G.add_edge("A", "B", cost=1.0, capacity=2.0, mode="sea")
    assert default_unserved_penalty(G) == 5.0
    sol = min_cost_multicommodity_flow(G, [("A", "B", 5.0)])
    assert sol.unserved[0] == pytest.approx(1.0) and sol.total_cost == pytest.approx(2 + 6 + 5)
    # a cheap lost sale: the planner refuses the expensive leg
    cheap = min_cost_multicommodity_flow(G, [("A", "B", 5.0)], unserved_penalty=2.0)
    assert cheap.unserved[0] == pytest.approx(3.0) and cheap.routing_cost == pytest.approx(2.0)
    # filters remove legs
    sea_only = min_cost_multicommodity_flow(G, [("A", "B", 2.0)], edge_ok=lambda u, v, k, d: d["mode"] == "sea")
    assert sea_only.routing_cost == pytest.approx(2.0)
    trivial = min_cost_multicommodity_flow(G, [("A", "A", 3.0), ("B", "A", 0.0)])
    assert trivial.total_cost == 0.0 and trivial.feasible
    with pytest.raises(nx.NodeNotFound):
        min_cost_multicommodity_flow(G, [("A", "Q", 1.0)])


def greedy_4pl_routing(G, comms):
    """Myopic integrator: books each commodity, in turn, on its cheapest route with spare capacity."""
    spare = {leg: G.edges[leg]["capacity"] for leg in G.edges(keys=True)}
    booked = {}
    unserved = 0.0
    for c in comms:
        left = c.volume
        while left > 1e-9:
            routes = pareto_services(
                G, c.source, c.target, objectives=("cost",), edge_ok=lambda u, v, k, d: spare[(u, v, k)] > 1e-9
            )
            if not routes:
                break
            route = routes[0]
            amount = min(left, min(spare[leg] for leg in route.legs))
            for leg in route.legs:
                spare[leg] -= amount
                booked[leg] = booked.get(leg, 0.0) + amount
            left -= amount
        unserved += left
    return booked, unserved


def test_integration_efficiency_of_a_greedy_integrator(independent_mcf):
    """A myopic integrator booking each commodity in turn on its cheapest open route, against
    the centralised optimum: the optimum is what an independent LP finds, and the greedy
    integrator is strictly worse on some networks (shared capacity it takes first) and as good
    on others."""
    effs = []
    for seed in range(20):
        rng = np.random.default_rng(300 + seed)
        n = int(rng.integers(5, 9))
        G = random_network(rng, n, int(rng.integers(2 * n, 4 * n)))
        comms = []
        for _ in range(int(rng.integers(2, 6))):
            s, t = (int(x) for x in rng.choice(n, size=2, replace=False))
            comms.append(Commodity(s, t, float(rng.integers(1, 25))))
        opt = min_cost_multicommodity_flow(G, comms)
        lp = independent_mcf(G, [(c.source, c.target, c.volume) for c in comms], opt.unserved_penalty)
        assert opt.total_cost == pytest.approx(lp, rel=1e-9, abs=1e-9), seed
        booked, unserved = greedy_4pl_routing(G, comms)
        realised = sum(G.edges[leg]["cost"] * f for leg, f in booked.items()) + opt.unserved_penalty * unserved
        assert routing_cost(G, booked) == pytest.approx(realised - opt.unserved_penalty * unserved)
        eff = integration_efficiency(realised, opt.total_cost)
        assert eff == pytest.approx(lp / realised)
        effs.append(eff)
    effs = np.array(effs)
    assert (effs < 1 - 1e-6).sum() >= 3 and (np.abs(effs - 1) < 1e-9).sum() >= 3, effs


def test_integration_efficiency_values():
    assert integration_efficiency(120.0, 100.0) == pytest.approx(100 / 120)
    assert integration_efficiency(0.0, 0.0) == 1.0
    np.testing.assert_allclose(integration_efficiency([100.0, 200.0], [100.0, 50.0]), [1.0, 0.25])
    with pytest.raises(ValueError):
        integration_efficiency(-1.0, 1.0)
