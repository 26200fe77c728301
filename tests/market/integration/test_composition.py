import networkx as nx
import numpy as np
import pytest

from market.integration.composition import (
    Service,
    ServiceCache,
    brute_force_pareto,
    pareto_services,
    pick_offers,
)

MODES = ("air", "sea", "rail", "road")


def random_multigraph(rng, n_nodes, n_edges, *, integer=True, zero_prob=0.0, max_cost=5):
    """Random multimodal multigraph with parallel legs; small integer values make ties likely."""
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(n_nodes))
    for _ in range(n_edges):
        u, v = rng.choice(n_nodes, size=2, replace=False)
        if integer:
            cost = float(rng.integers(0, max_cost + 1)) if rng.random() < zero_prob else float(rng.integers(1, max_cost + 1))
            time = float(rng.integers(0, 4)) if rng.random() < zero_prob else float(rng.integers(1, 4))
        else:
            cost, time = float(rng.uniform(0.5, 10)), float(rng.uniform(0.1, 5))
        risk = float(rng.choice([0.0, 0.01, 0.02, 0.05]))
        G.add_edge(
            int(u),
            int(v),
            cost=cost,
            time=time,
            risk=risk,
            capacity=float(rng.integers(0, 50)),
            mode=str(rng.choice(MODES)),
            provider=f"P{int(rng.integers(0, 4))}",
        )
    return G


def legsets(services):
    return sorted(s.legs for s in services)


def test_service_totals_combine_risk_multiplicatively():
    G = nx.MultiDiGraph()
    G.add_edge("A", "B", cost=2.0, time=1.0, risk=0.1, capacity=10, mode="air", provider="X")
    G.add_edge("B", "C", cost=3.0, time=2.5, risk=0.2, mode="road", provider="Y")
    (s,) = pareto_services(G, "A", "C")
    assert s.legs == (("A", "B", 0), ("B", "C", 0))
    assert s.nodes == ("A", "B", "C")
    assert s.cost == 5.0 and s.time == 3.5
    assert s.risk == pytest.approx(1 - 0.9 * 0.8)
    assert s.reliability == pytest.approx(0.72)
    assert s.capacity == 10
    assert s.label(G) == "A -[air/X]-> B -[road/Y]-> C"
    assert s.label() == "A -[0]-> B -[0]-> C"


def test_three_objective_front_on_parallel_providers():
    G = nx.MultiDiGraph()
    G.add_edge("CN", "EU", key="sea", cost=1.0, time=30.0, risk=0.02)
    G.add_edge("CN", "EU", key="air", cost=6.0, time=3.0, risk=0.01)
    G.add_edge("CN", "EU", key="rail", cost=3.0, time=15.0, risk=0.03)
    G.add_edge("CN", "EU", key="bad", cost=7.0, time=31.0, risk=0.05)  # dominated by everything
    G.add_edge("EU", "DE", key="post", cost=2.0, time=2.0, risk=0.0)
    front = pareto_services(G, "CN", "DE")
    assert [s.legs[0][2] for s in front] == ["sea", "rail", "air"]  # lexicographic (cost first)
    # dropping risk from the objectives keeps rail: it still trades cost vs time
    assert len(pareto_services(G, "CN", "DE", objectives=("cost", "time"))) == 3
    # cost only: a single cheapest route
    (only,) = pareto_services(G, "CN", "DE", objectives=("cost",))
    assert only.legs[0][2] == "sea"


@pytest.mark.parametrize("seed", range(100))
def test_label_setting_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 8))
    G = random_multigraph(rng, n, int(rng.integers(2 * n, 4 * n + 4)), integer=seed % 2 == 0, zero_prob=0.3 * (seed % 3 == 0))
    s, t = 0, n - 1
    kwargs = {}
    if seed % 4 == 1:
        allowed = {"air", "road", "rail"}
        kwargs["edge_ok"] = lambda u, v, k, d: d["mode"] in allowed
    elif seed % 4 == 2:
        kwargs["edge_ok"] = lambda u, v, k, d: d["capacity"] >= 10
    if seed % 5 == 3:
        kwargs["max_hops"] = int(rng.integers(1, 4))
    objectives = [("cost", "time", "risk"), ("cost", "time"), ("time", "risk"), ("cost",)][seed % 4]
    got = pareto_services(G, s, t, objectives=objectives, **kwargs)
    want = brute_force_pareto(G, s, t, objectives=objectives, **kwargs)
    assert legsets(got) == legsets(want)
    assert [s.vector(objectives) for s in got] == sorted(s.vector(objectives) for s in got)
    if "max_hops" in kwargs:
        assert all(s.hops <= kwargs["max_hops"] for s in got)


def test_ties_are_all_kept_and_zero_legs_do_not_loop():
    G = nx.MultiDiGraph()
    for k in ("p1", "p2"):
        G.add_edge("A", "B", key=k, cost=1.0, time=1.0, risk=0.0)
    G.add_edge("B", "C", cost=0.0, time=0.0, risk=0.0)
    G.add_edge("C", "B", cost=0.0, time=0.0, risk=0.0)  # zero-cost cycle
    G.add_edge("C", "D", cost=1.0, time=1.0, risk=0.0)
    G.add_edge("B", "D", cost=1.0, time=1.0, risk=0.0)
    got = pareto_services(G, "A", "D")
    assert legsets(got) == legsets(brute_force_pareto(G, "A", "D"))
    assert len(got) == 4  # 2 providers x 2 equivalent continuations


def test_hop_limit_keeps_front_exact():
    # The cheap route needs 3 legs; with a 2-leg limit a label with fewer hops
    # must survive at the intermediate node even though it is costlier.
    G = nx.MultiDiGraph()
    G.add_edge("S", "X", cost=1.0, time=1.0)
    G.add_edge("X", "M", cost=1.0, time=1.0)
    G.add_edge("S", "M", cost=5.0, time=5.0)
    G.add_edge("M", "T", cost=1.0, time=1.0)
    unlimited = pareto_services(G, "S", "T")
    assert [s.nodes for s in unlimited] == [("S", "X", "M", "T")]
    limited = pareto_services(G, "S", "T", max_hops=2)
    assert [s.nodes for s in limited] == [("S", "M", "T")]
    assert pareto_services(G, "S", "T", max_hops=1) == []


def test_certain_failure_leg_and_edge_cases():
    G = nx.MultiDiGraph()
    G.add_edge("A", "B", key="doomed", cost=1.0, time=1.0, risk=1.0)
    G.add_edge("A", "B", key="safe", cost=2.0, time=1.0, risk=0.0)
    front = pareto_services(G, "A", "B")
    assert [s.legs[0][2] for s in front] == ["doomed", "safe"]
    assert front[0].risk == 1.0
    assert pareto_services(G, "B", "A") == []
    (trivial,) = pareto_services(G, "A", "A")
    assert trivial.legs == () and trivial.cost == 0.0
    with pytest.raises(nx.NodeNotFound):
        pareto_services(G, "A", "Z")
    G.add_edge("B", "C", cost=-1.0, time=1.0)
    with pytest.raises(ValueError):
        pareto_services(G, "A", "C")


def test_max_labels_returns_efficient_prefix():
    rng = np.random.default_rng(7)
    G = random_multigraph(rng, 8, 30, integer=False)
    full = pareto_services(G, 0, 7)
    assert len(full) > 2
    part = pareto_services(G, 0, 7, max_labels=len(full) + 3)
    assert set(part) <= set(full)


def test_pick_offers_named_and_deduplicated():
    def svc(name, cost, time, risk):
        return Service(legs=((0, 1, name),), nodes=(0, 1), cost=cost, time=time, risk=risk)

    cheap, mid, fast, knee = svc("c", 1.0, 20.0, 0.02), svc("m", 4.0, 12.0, 0.02), svc("f", 10.0, 2.0, 0.02), svc("k", 3.0, 6.0, 0.02)
    offers = pick_offers([cheap, mid, fast, knee])
    assert list(offers) == ["economy", "standard", "express"]
    assert offers["economy"] is cheap and offers["express"] is fast and offers["standard"] is knee
    # weights move the compromise
    assert pick_offers([cheap, mid, fast, knee], weights={"cost": 1.0, "time": 0.0})["standard"] is knee
    # a route that is both cheapest and fastest is offered once
    dominant = svc("d", 1.0, 1.0, 0.0)
    assert pick_offers([dominant, dominant]) == {"economy": dominant}
    two = pick_offers([cheap, fast])
    assert two == {"economy": cheap, "express": fast}
    assert pick_offers([]) == {}
    with pytest.raises(ValueError):
        pick_offers([cheap], names=("premium",))


def test_pick_offers_on_a_real_front():
    rng = np.random.default_rng(3)
    G = random_multigraph(rng, 8, 35, integer=False)
    front = pareto_services(G, 0, 7)
    offers = pick_offers(front, names=("economy", "standard", "express", "secure"))
    assert offers["economy"].cost == min(s.cost for s in front)
    assert offers["express"].time == min(s.time for s in front)
    assert len(set(offers.values())) == len(offers)


# --------------------------------------------------------------------- cache


def diamond():
    G = nx.MultiDiGraph()
    G.add_edge("S", "A", key="a1", cost=1.0, time=5.0, risk=0.0)
    G.add_edge("A", "T", key="a2", cost=1.0, time=5.0, risk=0.0)
    G.add_edge("S", "B", key="b1", cost=5.0, time=1.0, risk=0.0)
    G.add_edge("B", "T", key="b2", cost=5.0, time=1.0, risk=0.0)
    G.add_edge("S", "C", key="c1", cost=9.0, time=9.0, risk=0.0)  # dominated branch
    G.add_edge("C", "T", key="c2", cost=9.0, time=9.0, risk=0.0)
    G.add_edge("X", "Y", key="far", cost=1.0, time=1.0, risk=0.0)  # never reached from S
    return G


def test_cache_hits_and_exact_invalidation():
    G = diamond()
    cache = ServiceCache(G)
    first = cache.get("S", "T")
    assert (cache.hits, cache.misses) == (0, 1)
    assert cache.get("S", "T") == first
    assert (cache.hits, cache.misses) == (1, 1)

    # worsening a leg off every efficient route keeps the entry
    G.edges["C", "T", "c2"]["cost"] = 50.0
    assert cache.leg_changed("C", "T", "c2", worsened=True) == 0
    cache.get("S", "T")
    assert (cache.hits, cache.misses) == (2, 1)

    # any change to a leg the search never read keeps the entry
    G.edges["X", "Y", "far"]["cost"] = 0.0
    assert cache.leg_changed("X", "Y", "far") == 0
    assert cache.leg_added("X", "S", 0) == 0
    cache.get("S", "T")
    assert (cache.hits, cache.misses) == (3, 1)

    # worsening a leg on an efficient route forces recomputation
    G.edges["A", "T", "a2"]["time"] = 20.0
    assert cache.leg_changed("A", "T", "a2", worsened=True) == 1
    after = cache.get("S", "T")
    assert (cache.hits, cache.misses) == (3, 2)
    assert legsets(after) == legsets(pareto_services(G, "S", "T"))

    # an off-route leg that improves can join the front: it must invalidate
    G.edges["C", "T", "c2"]["cost"] = 0.0
    G.edges["S", "C", "c1"].update(cost=0.0, time=0.5)
    assert cache.leg_changed("S", "C", "c1") == 1
    now = cache.get("S", "T")
    assert ("S", "C", "c1") in {leg for s in now for leg in s.legs}
    assert legsets(now) == legsets(pareto_services(G, "S", "T"))


def test_cache_keys_by_filter_and_pair():
    G = diamond()
    cache = ServiceCache(G)
    no_air = lambda u, v, k, d: k != "a1"  # noqa: E731
    all_routes = cache.get("S", "T")
    filtered = cache.get("S", "T", edge_ok=no_air, filter_key="no-a1")
    assert filtered != all_routes
    cache.get("S", "T", edge_ok=lambda u, v, k, d: k != "a1", filter_key="no-a1")  # same key, new lambda
    cache.get("S", "A")
    assert (cache.hits, cache.misses) == (1, 3)
    # leg b2 is on the routes of both S->T entries but not on S->A
    G.edges["B", "T", "b2"]["risk"] = 0.5
    assert cache.leg_changed("B", "T", "b2", worsened=True) == 2
    assert ("S", "A", None) in cache and len(cache) == 1
    cache.clear()
    assert len(cache) == 0


def test_cache_invalidation_is_exact_under_random_changes():
    """After any sequence of leg updates the cache answers exactly like a fresh search."""
    rng = np.random.default_rng(11)
    G = random_multigraph(rng, 9, 40, integer=True)
    ok = lambda u, v, k, d: d["capacity"] >= 5  # noqa: E731
    cache = ServiceCache(G)
    pairs = [(0, 8), (1, 7), (2, 6), (3, 5), (8, 0)]
    kept = 0
    for step in range(300):
        s, t = pairs[step % len(pairs)]
        key = "cap5" if step % 2 else None
        got = cache.get(s, t, edge_ok=ok if key else None, filter_key=key)
        assert legsets(got) == legsets(pareto_services(G, s, t, edge_ok=ok if key else None))
        edges = list(G.edges(keys=True))
        u, v, k = edges[int(rng.integers(len(edges)))]
        data = G.edges[u, v, k]
        kind = rng.integers(4)
        if kind == 0:  # worsen
            data["cost"] += float(rng.integers(1, 4))
            data["capacity"] = max(0.0, data["capacity"] - 10)
            kept += len(cache) - cache.leg_changed(u, v, k, worsened=True)
        elif kind == 1:  # improve
            data["cost"] = max(0.0, data["cost"] - float(rng.integers(1, 4)))
            data["capacity"] += 10
            cache.leg_changed(u, v, k)
        elif kind == 2:  # new provider on a lane
            a, b = (int(x) for x in rng.choice(9, size=2, replace=False))
            new_key = G.add_edge(a, b, cost=1.0, time=1.0, risk=0.0, capacity=20.0, mode="air", provider="N")
            cache.leg_added(a, b, new_key)
        else:  # lane closed
            G.remove_edge(u, v, k)
            cache.leg_removed(u, v, k)
    assert cache.hits > 0 and kept > 0


@pytest.mark.parametrize("seed", range(60))
def test_hop_limited_front_equals_brute_force(seed):
    # Few objectives and a wide cost range prune hard: long cheap partial routes
    # then shadow short ones, which is where a hop-blind dominance test breaks.
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(7, 10))
    G = random_multigraph(rng, n, int(rng.integers(3 * n, 4 * n)), integer=True, max_cost=30)
    objectives = (("cost",), ("cost", "time"))[seed % 2]
    for max_hops in (2, 3, 4):
        got = pareto_services(G, 0, n - 1, objectives=objectives, max_hops=max_hops)
        want = brute_force_pareto(G, 0, n - 1, objectives=objectives, max_hops=max_hops)
        assert legsets(got) == legsets(want)
