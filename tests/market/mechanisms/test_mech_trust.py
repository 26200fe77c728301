"""Tests for reputation, insurance and the contract net protocol."""

import numpy as np
import pytest

from market.mechanisms.contract_net import (
    ContractNode,
    Proposal,
    SimpleContractor,
    Task,
    run_contract_net,
)
from market.mechanisms.insurance import (
    premium,
    settle_claims,
)
from market.mechanisms.reputation import ReputationBook


# ---------------------------------------------------------------------------
# Reputation
# ---------------------------------------------------------------------------
def test_reputation_falls_with_failures_and_recovers():
    book = ReputationBook(3, half_life=10.0)
    np.testing.assert_allclose(book.score(), 0.5)
    history = [book.score()[0]]
    for _ in range(10):  # a run of late deliveries and losses for entity 0
        book.record_deliveries([0], on_time=[False], lost=[True])
        book.decay()
        history.append(book.score()[0])
    assert np.all(np.diff(history) < 0)
    low = history[-1]
    for _ in range(40):  # then good service
        book.record_deliveries([0], on_time=[True], lost=[False])
        book.decay()
        history.append(book.score()[0])
    assert np.all(np.diff(history[11:]) > 0) and history[-1] > 0.5 > low
    assert book.score()[1] == pytest.approx(0.5)  # others untouched


def test_reputation_batch_update_matches_loop_and_forgetting():
    rng = np.random.default_rng(0)
    ent = rng.integers(0, 5, 200)
    ok = rng.random(200) < 0.7
    batch = ReputationBook(5)
    batch.record(ent, "delivery", ok)
    loop = ReputationBook(5)
    for e, o in zip(ent, ok):
        loop.record([e], "delivery", [o])
    np.testing.assert_allclose(batch.positive, loop.positive)
    np.testing.assert_allclose(batch.negative, loop.negative)
    np.testing.assert_allclose(batch.positive[:, 0], np.bincount(ent[ok], minlength=5))
    # forgetting: the same failures weigh less once they are old
    fresh, old = ReputationBook(1, half_life=5.0), ReputationBook(1, half_life=5.0)
    fresh.record_payments([0], [True])
    old.record_payments([0], [False])
    old.decay(steps=20)
    old.record_payments([0], [True])
    fresh.record_payments([0], [False])
    assert old.score()[0] > fresh.score()[0]
    # disputes lower the score, newcomers start at the prior
    book = ReputationBook(2)
    book.record_disputes([0, 0], [True, True])
    assert book.score()[0] < book.score()[1]
    new = book.add_entities(2)
    np.testing.assert_allclose(book.score(new), 0.5)


# ---------------------------------------------------------------------------
# Insurance
# ---------------------------------------------------------------------------
def test_settlement_conserves_money_and_respects_layers():
    rng = np.random.default_rng(1)
    n = 5000
    value = rng.uniform(0, 20_000, n)
    limit = rng.choice([0.0, 500.0, 5_000.0, np.inf], n)
    insured = rng.random(n) < 0.6
    deductible = rng.choice([0.0, 100.0, 1_000.0], n)
    frac = rng.choice([0.0, 0.3, 1.0], n)
    s = settle_claims(value, limit, insured, deductible, loss_fraction=frac)
    np.testing.assert_allclose(s.carrier + s.insurer + s.owner, s.loss, rtol=0, atol=1e-8)
    np.testing.assert_allclose(s.loss, value * frac)
    assert np.all(s.carrier >= 0) and np.all(s.insurer >= 0) and np.all(s.owner >= -1e-8)
    assert np.all(s.carrier <= limit) and np.all(s.insurer[~insured] == 0)
    # the owner of an insured shipment bears at most the deductible (full cover)
    assert np.all(s.owner[insured] <= deductible[insured] + 1e-8)
    # uninsured owners bear everything above the carrier's limit
    np.testing.assert_allclose(s.owner[~insured], (s.loss - np.minimum(s.loss, limit))[~insured])


def test_settlement_hand_example():
    s = settle_claims(value=[10_000.0, 10_000.0, 300.0], carrier_liability_limit=2_000.0,
                      insured=[True, False, True], deductible=500.0)
    np.testing.assert_allclose(s.carrier, [2_000, 2_000, 300])
    np.testing.assert_allclose(s.insurer, [7_500, 0, 0])
    np.testing.assert_allclose(s.owner, [500, 8_000, 0])


def test_fair_premium_equals_expected_payout():
    rng = np.random.default_rng(2)
    value = np.full(400_000, 8_000.0)
    risk = 0.02
    fair = premium(value[:1], risk, loading=0.0, carrier_liability_limit=1_000.0,
                   deductible=250.0)[0]
    assert fair == pytest.approx(risk * (8_000 - 1_000 - 250))
    lost = rng.random(value.size) < risk
    paid = settle_claims(value, 1_000.0, True, 250.0, loss_fraction=lost.astype(float)).insurer
    se = paid.std(ddof=1) / np.sqrt(value.size)
    assert abs(paid.mean() - fair) < 3 * se
    loaded = premium(8_000.0, risk, loading=0.3, carrier_liability_limit=1_000.0,
                     deductible=250.0, expense=5.0)
    assert loaded == pytest.approx(1.3 * fair + 5.0)
    # higher channel risk -> higher premium (vectorised)
    p = premium(1_000.0, np.array([0.001, 0.01, 0.05]))
    assert np.all(np.diff(p) > 0)


# ---------------------------------------------------------------------------
# Contract net
# ---------------------------------------------------------------------------
def test_contract_net_awards_best_proposal():
    task = Task("t1", "line_haul", quantity=10.0, deadline=5.0, service_level=0.9)
    cs = [
        SimpleContractor("cheap_unreliable", {"line_haul"}, 20, 80.0, 0.1, reliability=0.8),
        SimpleContractor("slow", {"line_haul"}, 20, 70.0, 0.1, lead_time=9.0),
        SimpleContractor("good", {"line_haul"}, 20, 90.0, 0.1, reliability=0.95),
        SimpleContractor("best", {"line_haul"}, 20, 85.0, 0.1, reliability=0.99),
        SimpleContractor("other_kind", {"last_mile"}, 20, 10.0, 0.1),
    ]
    node = run_contract_net(task, cs, manager="shipper")
    # ineligible proposals (reliability, deadline, kind) are filtered out
    assert {p.contractor for p in node.proposals} == {"good", "best"}
    assert [a.contractor for a in node.awards] == ["best"]
    assert node.awards[0].quantity == pytest.approx(10.0)
    assert node.awards[0].unit_price == pytest.approx(85.0 * 1.1)
    node.validate()


def test_contract_net_subcontracting_builds_valid_tree():
    carriers = [
        SimpleContractor("ups", {"first_mile", "last_mile"}, 100, 5.0, 0.2),
        SimpleContractor("dhl", {"first_mile", "last_mile"}, 100, 4.0, 0.2),
        SimpleContractor("cosco", {"line_haul"}, 100, 30.0, 0.1),
        SimpleContractor("msc", {"line_haul"}, 100, 28.0, 0.1),
    ]
    forwarder_a = SimpleContractor(
        "fwd_a", {"door_to_door"}, 60, 45.0, 0.15, contractors=carriers,
        outsource_kinds=("first_mile", "line_haul", "last_mile"))
    forwarder_b = SimpleContractor(
        "fwd_b", {"door_to_door"}, 60, 50.0, 0.15, contractors=carriers,
        outsource_kinds=("line_haul",), outsource_share=0.5)
    task = Task("order-7", "door_to_door", quantity=40.0)
    root = run_contract_net(task, [forwarder_b, forwarder_a], manager="4pl")
    root.validate()
    assert [a.contractor for a in root.awards] == ["fwd_a"]
    subs = root.awards[0].subcontracts
    assert [s.task.kind for s in subs] == ["first_mile", "line_haul", "last_mile"]
    assert [s.awards[0].contractor for s in subs] == ["dhl", "msc", "dhl"]
    assert all(s.manager == "fwd_a" and s.depth == 1 for s in subs)
    assert all(s.task.quantity == pytest.approx(40.0) for s in subs)
    assert len(list(root.walk())) == 4

    # a tampered tree is rejected by the validator
    bad = ContractNode(task=subs[0].task, manager="fwd_a", proposals=subs[0].proposals,
                       awards=subs[0].awards, depth=1)
    bad.awards[0].quantity = 1e6
    with pytest.raises(ValueError):
        bad.validate()


def test_contract_net_multi_winner_and_no_cycles():
    class Echo:
        """A contractor that tries to subcontract back to its own manager."""

        def __init__(self, name, network):
            self.name = name
            self.contractors = network

        def propose(self, task):
            return Proposal(self.name, task.task_id, unit_price=10.0, quantity=task.quantity)

        def subtasks(self, task, quantity):
            return [Task(task.task_id + "/sub", task.kind, quantity)]

    network = []
    a, b = Echo("a", network), Echo("b", network)
    network.extend([a, b])
    root = run_contract_net(Task("x", "any", 5.0), [a], manager="m", max_depth=10)
    root.validate()
    chain = [n.manager for n in root.walk()]
    assert chain == ["m", "a", "b"]  # b may not hand the task back to a

    from market.mechanisms.contract_net import tender_award_fn
    small = [SimpleContractor(f"c{i}", {"k"}, cap, cost, 0.0)
             for i, (cap, cost) in enumerate([(4, 10.0), (4, 12.0), (10, 15.0)])]
    node = run_contract_net(Task("y", "k", 8.0), small,
                            award_fn=tender_award_fn(max_winners=None))
    assert [(a.contractor, a.quantity) for a in node.awards] == [("c0", 4.0), ("c1", 4.0)]
    node.validate()
