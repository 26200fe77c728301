"""Visibility with an operational effect (market/goods/tracking.py) and after-sales contacts
(market/goods/aftersales.py), checked from the output files and by paired runs.

* timing: no event is seen before it happens, no delay is detected before its leg started or
  after it ended, and only detected delays are expedited (recounted from parcels.parquet);
* after-sales: WISMO, damage contacts and disputes recounted from the parcel rows against the
  summary, the daily series and the ledger, and the WISMO counts against the rate recomputed
  independently from each parcel's legs seen and days late;
* claims with tracking proof settle faster (claims.parquet);
* re-routing off a closed border only moves parcels whose position the integrator knows;
* removing the 4PL's visibility (no control tower) on paired seeds: it detects fewer delays,
  handles more contacts and disputes per parcel, and loses share.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from market import Marketplace
from market.goods.parcels import IN_STAGE, WAITING


def read(run, name: str, columns=None) -> pd.DataFrame:
    return pd.read_parquet(run.out / f"{name}.parquet", columns=columns)


def summary_file(run) -> dict:
    return json.loads((run.out / "summary.json").read_text())


def legs(run) -> tuple[pd.DataFrame, int]:
    p = read(run, "parcels")
    n = max(int(c.removeprefix("leg").split("_")[0]) for c in p.columns if c.startswith("leg") and c.endswith("_seen"))
    return p, n


# ------------------------------------------------------------------------------- timing
def test_no_event_is_seen_before_it_happens(baseline_run):
    """A leg's end event is seen on or after the day the leg ended; a delay is detected on or
    after the day its leg started and on or before the day it ended (only a delay seen while
    the leg still runs counts as detected)."""
    p, n = legs(baseline_run)
    checked_seen = checked_detect = 0
    for s in range(1, n + 1):
        seen, end = p[f"leg{s}_seen"].to_numpy(), p[f"leg{s}_end"].to_numpy()
        start, det = p[f"leg{s}_start"].to_numpy(), p[f"leg{s}_detect"].to_numpy()
        ended = end >= 0
        sel = ended & (seen >= 0)
        assert (seen[sel] >= end[sel]).all(), f"leg {s}: an end event seen before the leg ended"
        checked_seen += int(sel.sum())
        d = det >= 0
        assert (start[d] >= 0).all(), f"leg {s}: a delay detected on a leg that never started"
        assert (det[d] >= start[d]).all(), f"leg {s}: a delay detected before its leg started"
        assert (det[d & ended] <= end[d & ended]).all(), f"leg {s}: a delay 'detected' after its leg ended"
        checked_detect += int(d.sum())
        # nothing is seen of a leg that did not start
        assert (seen[start < 0] == -1).all() and (det[start < 0] == -1).all()
    assert checked_seen > 10_000 and checked_detect > 100


def test_only_detected_delays_are_expedited(baseline_run):
    """Expedited days only on 4PL parcels with a delay detected; the detected delays per parcel
    equal its legs with a detection day; the summary's delays and detections are the parcel
    rows' (parcels still in flight included)."""
    p, n = legs(baseline_run)
    s = summary_file(baseline_run)["tracking"]
    exp = p["expedited_days"] > 0
    assert exp.sum() > 50
    assert (p.loc[exp, "integrator"] >= 0).all(), "a merchant's own parcel was expedited"
    assert (p.loc[exp, "delays_detected"] > 0).all(), "a parcel was expedited without a detected delay"
    per_parcel = sum((p[f"leg{k}_detect"] >= 0).astype(int) for k in range(1, n + 1))
    assert (per_parcel == p["delays_detected"]).all()
    assert (p["delays_detected"] <= p["delays"]).all()
    assert int(p["delays"].sum()) == s["delays"]
    assert int(p["delays_detected"].sum()) == s["delays_detected"]
    assert int(p["expedited_days"].sum()) == s["expedited_days"]
    assert s["delays_missed"] == s["delays"] - s["delays_detected"] > 0


def test_coverage_by_provider_class_follows_the_schema(baseline_run):
    """Postal carriers record fewer events than express carriers; what buyers saw is at most
    what providers recorded."""
    s = summary_file(baseline_run)["tracking"]
    cls = s["by_provider_class"]
    assert cls["postal"]["recorded_share"] < cls["express"]["recorded_share"] - 0.2
    assert s["by_channel"]["postal"] < s["by_channel"]["express"]
    assert 0 < s["coverage_seen"] < max(c["recorded_share"] for c in cls.values() if c["legs"])


# ---------------------------------------------------------------------------- after-sales
def test_contacts_recounted_from_the_files(baseline_run):
    """WISMO, damage contacts and disputes: the parcel rows' sums are the summary's totals and
    the daily series' sums; what they cost in the ledger is contacts x the contact cost plus
    disputes x the fee, and the refunds of lost disputes are late parcels' sales without proof
    of delivery (the last leg's event unseen)."""
    run = baseline_run
    p, n = legs(run)
    s = summary_file(run)["aftersales"]
    ts = read(run, "timeseries")
    ledger = read(run, "ledger")
    cfg = Marketplace("baseline", rng=1).config.aftersales
    assert int(p["wismo"].sum()) == s["contacts"]["wismo"] == int(ts["contacts_wismo"].sum()) > 1000
    assert int(p["damage_contacts"].sum()) == s["contacts"]["damage"] == int(ts["contacts_damage"].sum()) > 0
    assert int(p["consumer_dispute"].sum()) == s["consumer_disputes"] == int(ts["contacts_dispute"].sum()) > 0
    by_kind = ledger.groupby("kind", observed=True)["amount_cents"].sum() / 100.0
    contacts = int(p["wismo"].sum() + p["damage_contacts"].sum())
    assert by_kind["contact"] == pytest.approx(contacts * cfg.contact_cost, abs=0.01)
    assert p["contact_usd"].sum() == pytest.approx(contacts * cfg.contact_cost, abs=0.01)
    assert by_kind["dispute_fee"] == pytest.approx(int(p["consumer_dispute"].sum()) * cfg.dispute_fee, abs=0.01)
    # refunds of disputes lost for want of proof of delivery
    last = np.full(len(p), -1)
    n_st = p["n_stages"].to_numpy()
    for k in range(1, n + 1):
        last = np.where(n_st == k, p[f"leg{k}_seen"].to_numpy(), last)
    late = (p["status"] == "delivered") & ~p["on_time"]
    lost_dispute = (p["consumer_dispute"] > 0) & late & (p["damaged"] == 0) & (last < 0)
    assert by_kind["dispute_refund"] == pytest.approx(p.loc[lost_dispute, "sale_usd"].sum(), abs=0.01)
    assert lost_dispute.sum() == s["disputes_lost"] > 0
    # disputes come only from late, lost or damaged parcels
    hit = (p["status"] == "lost") | (p["damaged"] > 0)
    assert not ((p["consumer_dispute"] > 0) & ~late & ~hit).any()


def test_wismo_follows_the_rate_recomputed_from_the_parcels(baseline_run):
    """Per finished (not lost) parcel, the WISMO contacts drawn average the rate recomputed here
    from its columns: wismo_rate x (1 - tracking_reduction x share of legs seen) + per late
    day x days late x (1 - warn_reduction if a delay was detected). Checked within 3 standard
    errors overall and within seen-share bands, so a wrong slope on tracking or lateness shows."""
    p, n = legs(baseline_run)
    cfg = Marketplace("baseline", rng=1).config.aftersales
    p = p[p["status"] == "delivered"]
    n_st = p["n_stages"].to_numpy()
    seen = sum(((p[f"leg{k}_seen"].to_numpy() >= 0) & (k <= n_st)).astype(float) for k in range(1, n + 1))
    share = seen / n_st
    late = np.maximum(p["lead_time_days"].to_numpy() - p["promised_days"].to_numpy(), 0)
    warned = p["delays_detected"].to_numpy() > 0
    lam = cfg.wismo_rate * (1 - cfg.tracking_reduction * share) \
        + cfg.wismo_per_late_day * late * np.where(warned, 1 - cfg.warn_reduction, 1.0)
    w = p["wismo"].to_numpy().astype(float)
    for sel in (np.ones(len(p), bool), share < 0.5, share >= 0.8, late > 0):
        assert sel.sum() > 200
        diff = w[sel] - lam[sel]
        se = np.sqrt(lam[sel].sum()) / sel.sum()          # Poisson: var = mean
        assert abs(diff.mean()) < 3 * se + 1e-9, (sel.sum(), diff.mean(), se)
    # and tracking matters: parcels followed end to end ask less than parcels barely seen
    assert w[share >= 0.8].mean() < w[share < 0.5].mean()


# ---------------------------------------------------------------------------------- claims
def test_claims_with_proof_settle_faster(baseline_run):
    """Undisputed claims with tracking proof of the hand-over take less time to settle (the
    schema's processing time times 1 - proof_speedup)."""
    c = read(baseline_run, "claims")
    c = c[(c["status"] == "paid") & ~c["disputed"]]
    took = c["paid_day"] - c["filed_day"]
    with_proof, without = took[c["with_proof"]], took[~c["with_proof"]]
    assert len(with_proof) > 20 and len(without) > 20
    assert with_proof.mean() < 0.8 * without.mean()


# ------------------------------------------------------------------------------- re-routing
def test_reroute_moves_only_parcels_it_can_locate():
    """When the Suifenhe crossing closes, the 4PL moves its parcels on the closed border routes
    that it can locate (first leg, or last hand-off seen); those it cannot locate stay on their
    route (none of those could be moved in the shipped world: see below; the gate itself is
    checked in test_reroute_gate_in_isolation)."""
    start = dt.date(2024, 2, 10)
    # only the border warehouse to Russia has route variants (via Suifenhe or Manzhouli)
    m = Marketplace("ru-border-closure", rng=5, **{"simulation.start_date": start, "integrators.count": 1,
                                                   "tracking.control_tower": "never",
                                                   "integrators.markup": 0.0,
                                                   "merchants.allowed_channels": ["border_warehouse"]})
    closure = (dt.date(2024, 3, 1) - start).days
    for _ in range(closure):
        m.step()
    parcels, it = m.parcels, m.integrators[0]
    status = parcels["status"]
    live = np.flatnonzero(((status == WAITING) | (status == IN_STAGE)) & (parcels["integrator_idx"] == it.index))
    ids = parcels["parcel_id"][live].copy()
    before = parcels["route"][live].copy()
    known = m.tracking.position_known(live, m.day + 1)     # as the integrator sees them tomorrow morning
    stage_now = parcels["stage"][live] + (parcels["status"][live] == IN_STAGE)
    blind_before, moved_before = it.reroute_blind, it.rerouted
    m.step()                                  # the closure day: integrators re-route before parcels move
    assert m.network_changed
    closed = np.array([not m.quoter.route_open(int(r)) for r in before])
    # where an open variant shares what the parcel has done so far (the integrator's own search)
    has_alt = np.array([closed[k] and it.catalogue.best_open_route(
        m.world.routes[int(r)].family, prefix=m.world.routes[int(r)].resources[: int(stage_now[k])]) not in (None, int(r))
        for k, r in enumerate(before)])
    row_of = {int(pid): i for i, pid in enumerate(m.parcels["parcel_id"])}
    after = np.array([m.parcels["route"][row_of[int(pid)]] if int(pid) in row_of else -1 for pid in ids])
    stuck_blind = closed & ~known & (after >= 0)
    stuck_seen = closed & has_alt & known & (after >= 0)
    assert stuck_seen.sum() > 0 and (closed & ~known).sum() > 0
    assert (after[stuck_blind] == before[stuck_blind]).all(), "a parcel out of sight was re-routed"
    # (in the shipped world the fork to Manzhouli comes right after the warehouse's first leg,
    # where the 4PL always knows the parcel: every parcel it cannot locate is past the fork)
    assert not (has_alt & ~known).any()
    assert (after[stuck_seen] != before[stuck_seen]).any(), "no located parcel was re-routed"
    assert it.reroute_blind - blind_before == int((closed & ~known).sum())
    assert it.rerouted > moved_before


def test_reroute_gate_in_isolation():
    """The gate itself: a parcel at its first leg is located; one whose last hand-off was not
    seen (or not yet) is not; re-routing touches only located parcels on closed routes."""
    m = Marketplace("baseline", rng=3, **{"merchants.exporters": 8, "merchants.importers": 3})
    for _ in range(15):
        m.step()
    p = m.parcels
    rows = np.arange(p.n)
    known = m.tracking.position_known(rows, m.day)
    stage = p["stage"][rows].astype(int)
    prev = p["leg_seen"][rows, np.maximum(stage - 1, 0)]
    expect = (stage == 0) | ((prev >= 0) & (prev <= m.day))
    assert (known == expect).all()
    assert (~known).any() and known.any()


def test_reroute_skips_parcels_it_cannot_locate():
    """The integrator's re-routing itself, on parcels put where the gate matters: the Suifenhe
    crossing is closed; 4PL parcels wait at the Harbin border warehouse after its first leg
    (before the fork to Manzhouli). Those whose warehouse scan it saw move to the Manzhouli
    variant; those whose scan it missed stay where they are. Re-routing an unseen parcel fails
    here."""
    start = dt.date(2024, 2, 10)
    m = Marketplace("ru-border-closure", rng=5, **{"simulation.start_date": start, "integrators.count": 1,
                                                   "tracking.control_tower": "never", "integrators.markup": 0.0,
                                                   "merchants.allowed_channels": ["border_warehouse"]})
    for _ in range((dt.date(2024, 3, 1) - start).days + 1):      # through the closure day
        m.step()
    it, p = m.integrators[0], m.parcels
    suifenhe, manzhouli = m.world.route_variants[("harbin_wh", "RU", "border_warehouse")][:2]
    assert not m.quoter.route_open(suifenhe) and m.quoter.route_open(manzhouli)
    rows = np.flatnonzero((p["integrator_idx"] == it.index) & ((p["status"] == WAITING) | (p["status"] == IN_STAGE)))[:40]
    assert rows.size == 40
    # after the warehouse leg, waiting for the truck towards Suifenhe; half of the scans seen
    p["route"][rows] = suifenhe
    p["n_stages"][rows] = m.net.route_n[suifenhe]
    p["stage"][rows] = 1
    p["status"][rows] = WAITING
    p["leg_seen"][rows, 0] = np.where(np.arange(rows.size) % 2 == 0, m.day, -1)
    seen = p["leg_seen"][rows, 0] >= 0
    blind_before = it.reroute_blind
    it.reroute()
    assert (p["route"][rows[seen]] == manzhouli).all(), "a located parcel was left on the closed route"
    assert (p["route"][rows[~seen]] == suifenhe).all(), "a parcel out of sight was re-routed"
    assert it.reroute_blind - blind_before >= int((~seen).sum())   # (and others past the fork)


# ---------------------------------------------------------------------------- paired seeds
SEEDS = (21, 22, 23)
PAIRED = {"merchants.exporters": 60, "integrators.count": 1}
NO_VISIBILITY = {"tracking.control_tower": "never", "tracking.fourpl_capture": 0.0}


def _figures(run) -> dict:
    """The 4PL's figures, recounted from parcels.parquet: delays detected, contacts and
    disputes per parcel, its share of parcels; and whether it ran a control tower."""
    s = summary_file(run)
    p = read(run, "parcels", ["integrator", "wismo", "damage_contacts", "consumer_dispute", "delays",
                              "delays_detected"])
    mine = p[p["integrator"] >= 0]
    return {"tower": s["integrators"]["4PL-1"]["visibility"]["control_tower"],
            "detected_share": mine["delays_detected"].sum() / max(mine["delays"].sum(), 1),
            "contacts_per_parcel": (mine["wismo"] + mine["damage_contacts"]).mean(),
            "disputes_per_1000": 1000 * mine["consumer_dispute"].mean(),
            "share": len(mine) / len(p)}


@pytest.mark.slow
def test_removing_visibility_costs_the_4pl(simulate):
    """Paired seeds: the 4PL with a control tower against the same market where it has no
    visibility at all (no tower, nothing of its providers' events seen: the floor); merchants
    doing it themselves see the same in both. Without it the 4PL detects fewer delays,
    handles more contacts and more disputes per parcel, and carries a smaller share of the
    parcels - each mean paired difference beyond 2 standard errors."""
    diffs = []
    for seed in SEEDS:
        on = _figures(simulate("baseline", days=150, seed=seed, **PAIRED, **{"tracking.control_tower": "always"}))
        off = _figures(simulate("baseline", days=150, seed=seed, **PAIRED, **NO_VISIBILITY))
        assert on.pop("tower") and not off.pop("tower")
        diffs.append({k: on[k] - off[k] for k in on})
    d = pd.DataFrame(diffs)
    mean, se = d.mean(), d.std(ddof=1) / np.sqrt(len(d))
    assert mean["detected_share"] > 2 * se["detected_share"], (mean, se)
    assert -mean["contacts_per_parcel"] > 2 * se["contacts_per_parcel"], (mean, se)
    assert -mean["disputes_per_1000"] > 2 * se["disputes_per_1000"], (mean, se)
    assert mean["share"] > 2 * se["share"], (mean, se)
