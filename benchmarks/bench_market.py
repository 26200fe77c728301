"""Market mechanisms' speed: tender rounds per auction format, spot clearing, service composition.

    .venv/bin/python benchmarks/bench_market.py [--repeats 5]

* tenders: one full tender round of the baseline market (every buyer, every resource) in
  each auction format; reported as tenders and contracts per second (median of repeats);
* spot clearing: the daily contract-then-spot allocation and the call-auction spot market on
  100,000 waiting parcels over 100 resources, as parcels allocated per second;
* composition: an integrator's Pareto service composition for every route family, with the
  cache cleared (cold) and warm, as composition requests per second.
Figures are medians; these machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from market import Marketplace
from market.goods.allocation import allocate_capacity, call_auction_allocate
from market.procurement.tendering import TenderRound

SMALL = {}


def bench_tenders(fmt: str, repeats: int) -> tuple[float, float, int]:
    rates, crates, n = [], [], 0
    for r in range(repeats):
        m = Marketplace("baseline", rng=r + 1, **{"market.auction": fmt})
        m.run_for(1)
        rnd = TenderRound(m, 1)
        t = time.perf_counter()
        rnd.run()
        dt = time.perf_counter() - t
        rates.append(rnd.tenders / dt)
        crates.append(rnd.contracts_signed / dt)
        n = rnd.tenders
    return statistics.median(rates), statistics.median(crates), n


def bench_spot(repeats: int, n: int = 100_000, R: int = 100) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    res = rng.integers(0, R, n)
    buyer = rng.integers(0, 50, n)
    nc = 400
    c_res, c_buyer = rng.integers(0, R, nc), rng.integers(0, 50, nc)
    c_rem = rng.integers(0, 200, nc).astype(float)
    no = 300
    o_res = rng.integers(0, R, no)
    c_off = np.array([rng.choice(np.flatnonzero(o_res == r)) if (o_res == r).any() else 0 for r in c_res])
    spare = rng.integers(0, 600, no).astype(float)
    price = rng.uniform(1, 10, no)
    bid = rng.uniform(0, 12, n)
    t_alloc, t_auct = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        allocate_capacity(res, buyer, c_res, c_buyer, c_rem, c_off, o_res, spare, price)
        t_alloc.append(time.perf_counter() - t)
        t = time.perf_counter()
        call_auction_allocate(res, bid, o_res, spare, price)
        t_auct.append(time.perf_counter() - t)
    return n / statistics.median(t_alloc), n / statistics.median(t_auct)


def bench_composition(repeats: int) -> tuple[float, float, int]:
    m = Marketplace("baseline", rng=1)
    m.run_for(2)
    it = m.integrators[0]
    families = [f for f in m.world.route_variants if f[2] != "replenish"]
    it.offers(families[0], 10.0)
    cold, warm = [], []
    for _ in range(repeats):
        it.catalogue.cache.clear()
        t = time.perf_counter()
        for f in families:
            it.catalogue.services(f, 10.0)
        cold.append(len(families) / (time.perf_counter() - t))
        t = time.perf_counter()
        for f in families:
            it.catalogue.services(f, 10.0)
        warm.append(len(families) / (time.perf_counter() - t))
    return statistics.median(cold), statistics.median(warm), len(families)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    print("tender rounds (baseline market, one full round):")
    for fmt in ("first_price", "vickrey", "clock", "package"):
        t, c, n = bench_tenders(fmt, args.repeats)
        print(f"  {fmt:12s} {n:4d} tenders   {t:8,.0f} tenders/s   {c:8,.0f} contracts/s")
    a, b = bench_spot(args.repeats)
    print("spot clearing (100,000 waiting parcels, 100 resources):")
    print(f"  contract-then-spot allocation {a:12,.0f} parcels/s")
    print(f"  call-auction spot market      {b:12,.0f} parcels/s")
    cold, warm, n = bench_composition(args.repeats)
    print(f"service composition ({n} route families):")
    print(f"  cold (cache cleared)  {cold:10,.0f} requests/s")
    print(f"  warm (cached)         {warm:10,.0f} requests/s")


if __name__ == "__main__":
    main()
