"""Insurance, reputation and the contract net: hand figures for defaults, limits and edge
cases the first tests let through (found by mutation testing)."""

from __future__ import annotations

import numpy as np
import pytest

from market.mechanisms import (DIMENSIONS, Proposal, ReputationBook, SimpleContractor, Task,
                               insurer_layer, premium, run_contract_net, settle_claims,
                               tender_award_fn)
from market.mechanisms.contract_net import Award, ContractNode


# ---- insurance ------------------------------------------------------------------------
def test_premium_defaults_hand_figures():
    # defaults: loading 25%, no carrier liability, no deductible, sum insured = value,
    # total loss, no expense, no minimum: 1.25 x 2% x 1,000 = 25.00
    assert premium(1000.0, 0.02).tolist() == pytest.approx(25.0)
    # carrier pays 300 of the 1,000 loss, deductible 50, 40% severity (loss 400):
    # insurer layer max(0, min(400 - 300, 1000) - 50) = 50; premium 1.1 x 0.1 x 50 + 2 = 7.5
    got = premium(1000.0, 0.1, loading=0.1, carrier_liability_limit=300.0, deductible=50.0,
                  loss_severity=0.4, expense=2.0)
    assert got.tolist() == pytest.approx(7.5)
    # a sum insured below the value caps the layer: min(1000, 600) = 600 -> 1.25 x 0.5 x 600
    assert premium(1000.0, 0.5, sum_insured=600.0).tolist() == pytest.approx(375.0)
    # the minimum premium applies when the risk premium is smaller
    assert premium(100.0, 0.01, min_premium=5.0).tolist() == pytest.approx(5.0)
    assert premium(100.0, 0.01, loading=-1.0).tolist() == 0.0    # -100% loading is allowed


@pytest.mark.parametrize("risk", [0.0, 1.0])
def test_premium_risk_bounds_are_allowed(risk):
    assert premium(10.0, risk, loading=0.0).tolist() == pytest.approx(10.0 * risk)


@pytest.mark.parametrize("kw", [{"channel_risk": -0.01}, {"channel_risk": 1.01},
                                {"channel_risk": 0.1, "loading": -1.01}])
def test_premium_refuses_bad_inputs(kw):
    with pytest.raises(ValueError):
        premium(10.0, **kw)


def test_settlement_shares_hand_figures_and_broadcasting():
    # value 1,000, carrier limit 200, deductible 100, 60% loss: loss 600;
    # carrier 200; insured: min(400, 1000) - 100 = 300; owner 100; uninsured: owner 400
    s = settle_claims([1000.0, 1000.0], 200.0, [True, False], deductible=100.0, loss_fraction=0.6)
    assert s.loss.tolist() == [600.0, 600.0] and s.carrier.tolist() == [200.0, 200.0]
    assert s.insurer.tolist() == [300.0, 0.0] and s.owner.tolist() == [100.0, 400.0]
    # a sum insured of 250 caps the insurer: min(400, 250) - 100 = 150
    s = settle_claims(1000.0, 200.0, True, deductible=100.0, loss_fraction=0.6, sum_insured=250.0)
    assert float(s.insurer) == 150.0 and float(s.owner) == 250.0
    # shapes broadcast over insured flags, liability limits and deductibles given as arrays
    s = settle_claims(100.0, np.array([0.0, 50.0, 500.0]), True)
    assert s.carrier.tolist() == [0.0, 50.0, 100.0] and s.insurer.tolist() == [100.0, 50.0, 0.0]
    s = settle_claims(100.0, 0.0, np.array([True, False]))
    assert s.loss.tolist() == [100.0, 100.0] and s.insurer.tolist() == [100.0, 0.0]
    s = settle_claims(100.0, 0.0, True, deductible=np.array([0.0, 30.0]))
    assert s.loss.shape == (2,) and s.insurer.tolist() == [100.0, 70.0]
    s = settle_claims(np.array([0.0, 10.0]), 0.0, np.array([1, 0]), loss_fraction=np.array([1.0, 0.0]))
    assert s.loss.tolist() == [0.0, 0.0] and s.insurer.dtype == float


@pytest.mark.parametrize("value, frac", [(-1.0, 0.5), (10.0, -0.1), (10.0, 1.1)])
def test_settlement_refuses_bad_inputs(value, frac):
    with pytest.raises(ValueError):
        settle_claims(value, 0.0, True, loss_fraction=frac)


def test_settlement_edge_values_are_allowed():
    s = settle_claims(0.0, 0.0, True, loss_fraction=1.0)
    assert float(s.loss) == 0.0
    s = settle_claims(0.5, 0.0, True, loss_fraction=0.0)
    assert float(s.loss) == 0.0


def test_insurer_layer_hand_figures():
    # loss 500, carrier limit 120 (a negative limit counts as 0), deductible 30, sum insured 300
    assert insurer_layer(500.0, 120.0, 30.0, 300.0).tolist() == 270.0    # min(380, 300) - 30
    assert insurer_layer(500.0, -5.0).tolist() == 500.0
    assert insurer_layer(100.0, 120.0, 10.0).tolist() == 0.0


# ---- reputation ----------------------------------------------------------------------------
def test_reputation_hand_figures():
    # prior Beta(1, 1); entity 0: 3 on-time and 1 late delivery -> delivery (3+1)/(4+2) = 2/3;
    # one lost of those 4 -> loss dimension (3+1)/(4+2) = 2/3; others 1/2
    book = ReputationBook(2, half_life=None)
    book.record_deliveries(np.array([0, 0, 0, 0]), np.array([True, True, True, False]),
                           lost=np.array([False, False, True, False]))
    d = book.dimension_scores()
    assert d[0].tolist() == pytest.approx([2 / 3, 2 / 3, 0.5, 0.5]) and d[1].tolist() == [0.5] * 4
    # weights 0.5, 0.25, 0.1, 0.15: 0.5 x 2/3 + 0.25 x 2/3 + 0.25 x 0.5 = 0.625
    assert book.score().tolist() == pytest.approx([0.625, 0.5])
    assert book.score(np.array([1])).tolist() == [0.5]
    assert book.evidence().tolist() == [8.0, 0.0]
    # weighted evidence, disputes and payments
    book.record_disputes(np.array([1]), np.array([True]), weight=3.0)     # dispute: 1/(3+2)
    book.record_payments(np.array([1, 1]), np.array([True, True]))        # payment: 3/4
    assert book.dimension_scores(np.array([1]))[0].tolist() == pytest.approx([0.5, 0.5, 0.2, 0.75])
    # no half-life: decay does nothing unless given a factor
    book.decay(5.0)
    assert book.evidence().tolist() == [8.0, 5.0]
    book.decay(factor=0.5)
    assert book.evidence().tolist() == [4.0, 2.5]
    book.decay(factor=1.0)
    book.decay(factor=0.0)
    assert book.evidence().tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        book.decay(factor=1.5)
    with pytest.raises(ValueError):
        book.decay(factor=-0.1)


def test_reputation_half_life_prior_weights_and_growth():
    book = ReputationBook(1, half_life=10.0, prior=(2.0, 1.0), weights={"delivery": 1.0})
    assert book.score().tolist() == pytest.approx([2 / 3])              # prior mean a / (a + b)
    book.record(np.array([0]), "delivery", np.array([False]), weight=2.0)
    assert book.score().tolist() == pytest.approx([2 / 5])              # (0 + 2) / (2 + 3)
    book.decay(10.0)                                                      # one half-life
    assert book.negative[0, 0] == pytest.approx(1.0)
    new = book.add_entities(2)
    assert new.tolist() == [1, 2] and book.n_entities == 3
    assert book.score().tolist() == pytest.approx([2 / 4, 2 / 3, 2 / 3])
    # dimension given as indices per record
    book.record(np.array([1, 2]), np.array([DIMENSIONS.index("delivery"), DIMENSIONS.index("payment")]),
                np.array([True, False]))
    assert book.positive[1].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert book.negative[2].tolist() == [0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("kw", [{"weights": {"speed": 1.0}}, {"weights": {"delivery": -1.0}},
                                {"weights": {"delivery": 0.0}}, {"prior": (0.0, 1.0)},
                                {"prior": (1.0, 0.0)}])
def test_reputation_refuses_bad_settings(kw):
    with pytest.raises(ValueError):
        ReputationBook(2, **kw)


def test_reputation_refuses_bad_evidence():
    book = ReputationBook(2)
    with pytest.raises(ValueError):
        book.record(np.array([0]), "delivery", np.array([True]), weight=-1.0)
    with pytest.raises(IndexError):
        book.record(np.array([2]), "delivery", np.array([True]))
    with pytest.raises(IndexError):
        book.record(np.array([-1]), "delivery", np.array([True]))
    book.record(np.array([], dtype=np.int64), "delivery", np.array([], dtype=bool))
    book.record(np.array([1]), "delivery", np.array([True]), weight=0.0)
    assert book.evidence().tolist() == [0.0, 0.0]


# ---- contract net ------------------------------------------------------------------------
def test_contract_net_proposal_filters_at_their_limits():
    # eta equal to the deadline and reliability equal to the service level are accepted
    task = Task("t", "lane", 10.0, deadline=5.0, service_level=0.9)
    ok = SimpleContractor("ok", {"lane"}, 10.0, unit_cost=10.0, reliability=0.9, lead_time=5.0)
    late = SimpleContractor("late", {"lane"}, 10.0, unit_cost=1.0, lead_time=5.01)
    shaky = SimpleContractor("shaky", {"lane"}, 10.0, unit_cost=1.0, reliability=0.89)
    empty = SimpleContractor("empty", {"lane"}, 0.0, unit_cost=1.0)
    other = SimpleContractor("other", {"sea"}, 10.0, unit_cost=1.0)
    node = run_contract_net(task, [late, shaky, empty, other, ok, ok])
    assert [p.contractor for p in node.proposals] == ["ok"]
    assert [(a.contractor, a.quantity, a.unit_price) for a in node.awards] == [("ok", 10.0, pytest.approx(11.0))]
    assert node.covered == 10.0 and node.manager == "root" and node.depth == 0
    node.validate()


def test_contract_net_subcontracting_depth_and_shares():
    # a forwarder outsources 50% of its award as line haul and last mile; max_depth stops it
    c1 = SimpleContractor("c1", {"line_haul", "last_mile"}, 100.0, unit_cost=2.0, markup=0.0)
    fwd = SimpleContractor("fwd", {"door"}, 40.0, unit_cost=5.0, contractors=[c1],
                           outsource_kinds=("line_haul", "last_mile"), outsource_share=0.5)
    node = run_contract_net(Task("d", "door", 40.0), [fwd])
    subs = node.awards[0].subcontracts
    assert [s.task.kind for s in subs] == ["line_haul", "last_mile"]
    assert [s.task.quantity for s in subs] == [20.0, 20.0] and [s.depth for s in subs] == [1, 1]
    assert [s.task.task_id for s in subs] == ["d/fwd/line_haul", "d/fwd/last_mile"]
    assert all(s.manager == "fwd" and s.awards[0].unit_price == 2.0 for s in subs)
    assert len(list(node.walk())) == 3
    node.validate()
    flat = run_contract_net(Task("d", "door", 40.0), [fwd], max_depth=0)
    assert flat.awards[0].subcontracts == []
    assert fwd.subtasks(Task("x", "door", 1.0), 0.0) == []


def test_contract_net_validation_catches_each_inconsistency():
    p = Proposal("a", "t", 5.0, 10.0)
    task = Task("t", "k", 10.0)

    def node(awards, proposals=(p,), depth=0):
        return ContractNode(task, "root", list(proposals), awards, depth)

    node([Award("a", 10.0, 5.0, p)]).validate()
    bad = [
        node([Award("a", 10.0, 5.0, p), Award("a", 1.0, 5.0, p)]),                 # over-awarded
        node([Award("b", 1.0, 5.0, Proposal("b", "t", 5.0, 10.0))]),                # no proposal
        node([Award("a", 1.0, 5.0, Proposal("a", "t", 6.0, 10.0))]),                # other proposal
        node([Award("a", 0.0, 5.0, p)]),                                            # nothing awarded
        node([Award("a", 11.0, 5.0, p)], proposals=(p,)),                            # more than offered
    ]
    for n in bad:
        with pytest.raises(ValueError):
            n.validate()
    root = node([Award("root", 1.0, 5.0, Proposal("root", "t", 5.0, 10.0))],
                proposals=(Proposal("root", "t", 5.0, 10.0),))
    with pytest.raises(ValueError):                                                  # a cycle
        root.validate()
    sub_task = Task("s", "k", 5.0)
    child = ContractNode(sub_task, "a", [], [], depth=1)
    for wrong in (ContractNode(sub_task, "x", [], [], depth=1),                       # wrong manager
                  ContractNode(Task("s", "k", 11.0), "a", [], [], depth=1),           # too big
                  ContractNode(sub_task, "a", [], [], depth=2)):                      # wrong depth
        with pytest.raises(ValueError):
            node([Award("a", 10.0, 5.0, p, [wrong])]).validate()
    node([Award("a", 10.0, 5.0, p, [child])]).validate()
    # tolerance: a hair over the quantity passes, more does not
    hair = Proposal("a", "t", 5.0, 10.0)
    node([Award("a", 10.0 + 1e-12, 5.0, hair)], proposals=(hair,)).validate()
    with pytest.raises(ValueError):
        node([Award("a", 10.0 + 1e-6, 5.0, hair)], proposals=(hair,)).validate()


def test_tender_award_fn_caps_capacity_and_uses_scores():
    # two proposals for 10 units; the cheaper one offers 30 (capped at 10) but is 80% reliable:
    # score 8 x (1 + 1 x 0.2) = 9.6 < 10 -> it wins all 10 units at its price (first price)
    props = [Proposal("a", "t", 10.0, 10.0), Proposal("b", "t", 8.0, 30.0, reliability=0.8)]
    award = tender_award_fn()(Task("t", "k", 10.0), props)
    assert award == [(1, 10.0, 8.0)]
    # Vickrey, one winner: paid the runner-up's score over its own factor 10 / 1.2
    award = tender_award_fn(payment="vickrey")(Task("t", "k", 10.0), props)
    assert award[0][:2] == (1, 10.0) and award[0][2] == pytest.approx(10.0 / 1.2)
    # two winners allowed, each capped at its offer: b 8 units... a 2 units when b offers 8
    props = [Proposal("a", "t", 10.0, 10.0), Proposal("b", "t", 8.0, 8.0)]
    award = tender_award_fn(max_winners=2)(Task("t", "k", 10.0), props)
    assert sorted(award) == [(0, 2.0, 10.0), (1, 8.0, 8.0)]
