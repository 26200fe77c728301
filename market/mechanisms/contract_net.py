"""The Contract Net Protocol (Smith 1980) over plain Python objects.

A *manager* announces a :class:`Task`, *contractors* answer with a
:class:`Proposal` (or decline), the manager awards the task to the best
proposal(s), and each awarded contractor may act as a manager in turn and
subcontract parts of its share to its own contractors -- e.g. a 4PL awards a
door-to-door shipment to a forwarder, which subcontracts first mile, line
haul and last mile to carriers.  The result is a tree of :class:`ContractNode`.

Contractors only need a ``name`` and ``propose(task) -> Proposal | None``.
To subcontract they additionally expose ``contractors`` (a sequence of
contractors) and ``subtasks(task, quantity) -> list[Task]``.
:class:`SimpleContractor` is a ready-made implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from .auctions import ScoreRule, TenderBids, award_tender

__all__ = [
    "Task",
    "Proposal",
    "Award",
    "ContractNode",
    "Contractor",
    "SimpleContractor",
    "run_contract_net",
    "tender_award_fn",
]


@dataclass(frozen=True)
class Task:
    """A task announcement.

    task_id: identifier; kind: what is to be done (e.g. "line_haul", "lane
    CN-US"); quantity: units; deadline: latest acceptable completion time
    (``eta``); service_level: minimum on-time reliability required;
    attributes: free-form extra data.
    """

    task_id: str
    kind: str
    quantity: float
    deadline: float = float("inf")
    service_level: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Proposal:
    """A contractor's bid for a task: per-unit price, units offered,
    reliability/reputation in [0, 1] and promised completion time ``eta``."""

    contractor: str
    task_id: str
    unit_price: float
    quantity: float
    reliability: float = 1.0
    reputation: float = 1.0
    eta: float = 0.0


@runtime_checkable
class Contractor(Protocol):
    """Anything that can answer a task announcement."""

    name: str

    def propose(self, task: Task) -> Proposal | None:
        """A proposal for the announced task, or None to decline."""
        ...


@dataclass
class Award:
    """A contract: ``quantity`` units of the task at ``unit_price`` to
    ``contractor``, plus the subcontracting nodes it spawned."""

    contractor: str
    quantity: float
    unit_price: float
    proposal: Proposal
    subcontracts: list["ContractNode"] = field(default_factory=list)


@dataclass
class ContractNode:
    """One announce-bid-award cycle: the task, who managed it, every valid
    proposal received and the resulting awards (covered may be < quantity)."""

    task: Task
    manager: str
    proposals: list[Proposal]
    awards: list[Award]
    depth: int = 0

    @property
    def covered(self) -> float:
        """Units of the task awarded, over all awards."""
        return float(sum(a.quantity for a in self.awards))

    def walk(self) -> Iterator["ContractNode"]:
        """Depth-first iteration over this node and all sub-contract nodes."""
        yield self
        for a in self.awards:
            for child in a.subcontracts:
                yield from child.walk()

    def validate(self, tol: float = 1e-9) -> None:
        """Check tree consistency; raise ``ValueError`` if violated.

        Every award goes to a contractor that proposed, for no more than it
        offered, and the awards cover at most the task quantity; a subtask is
        no larger than its parent award, is managed by the awarded contractor,
        and nobody is a contractor twice on one path from the root.
        """
        self._validate(tol, (self.manager,))

    def _validate(self, tol: float, ancestors: tuple[str, ...]) -> None:
        offered = {p.contractor: p for p in self.proposals}
        if self.covered > self.task.quantity + tol:
            raise ValueError(f"task {self.task.task_id}: over-awarded")
        for a in self.awards:
            p = offered.get(a.contractor)
            if p is None or a.proposal != p:
                raise ValueError(f"task {self.task.task_id}: award without proposal")
            if a.quantity > p.quantity + tol or a.quantity <= 0:
                raise ValueError(f"task {self.task.task_id}: bad award quantity")
            if a.contractor in ancestors:
                raise ValueError(f"task {self.task.task_id}: cycle via {a.contractor}")
            for child in a.subcontracts:
                if child.manager != a.contractor:
                    raise ValueError("subcontract not managed by the awarded contractor")
                if child.task.quantity > a.quantity + tol:
                    raise ValueError("subtask larger than the parent award")
                if child.depth != self.depth + 1:
                    raise ValueError("inconsistent depth")
                child._validate(tol, ancestors + (a.contractor,))


AwardFn = Callable[[Task, list[Proposal]], list[tuple[int, float, float]]]


def tender_award_fn(rule: ScoreRule = ScoreRule(), max_winners: int | None = 1,
                    payment: str = "first_price") -> AwardFn:
    """Award function backed by :func:`market.mechanisms.auctions.award_tender`.

    Returns ``(proposal index, quantity, unit price)`` triples.
    """

    def award(task: Task, proposals: list[Proposal]) -> list[tuple[int, float, float]]:
        bids = TenderBids(
            bidder=np.arange(len(proposals)),
            price=[p.unit_price for p in proposals],
            capacity=[min(p.quantity, task.quantity) for p in proposals],
            reliability=[p.reliability for p in proposals],
            reputation=[p.reputation for p in proposals],
        )
        res = award_tender(bids, task.quantity, rule=rule, max_winners=max_winners,
                           payment=payment)
        return [(int(i), float(res.quantity[i]), float(res.unit_payment[i]))
                for i in res.winners]

    return award


def run_contract_net(
    task: Task,
    contractors: Sequence[Contractor],
    manager: str = "root",
    award_fn: AwardFn | None = None,
    max_depth: int = 4,
    _depth: int = 0,
    _ancestors: tuple[str, ...] = (),
) -> ContractNode:
    """Run the contract net protocol for ``task`` and return the award tree.

    1. *Announce*: every contractor's ``propose(task)`` is called.
    2. *Bid*: proposals are kept if they offer a positive quantity, meet the
       deadline (``eta <= task.deadline``) and the service level
       (``reliability >= task.service_level``); contractors already on the
       path from the root are not asked (no cycles).
    3. *Award*: ``award_fn(task, proposals)`` returns ``(index, quantity,
       unit_price)``; the default is a single-winner scoring tender
       (:func:`tender_award_fn`, first-price), i.e. the best-scoring proposal
       able to carry the whole quantity (or, if none can, the largest share).
    4. *Subcontract*: each awarded contractor with ``contractors`` and
       ``subtasks`` runs the protocol recursively for each subtask it issues
       (up to ``max_depth`` levels).
    """
    award_fn = award_fn or tender_award_fn()
    path = _ancestors + (manager,)
    proposals: list[Proposal] = []
    by_name: dict[str, Contractor] = {}
    for c in contractors:
        if c.name in path or c.name in by_name:
            continue
        p = c.propose(task)
        if (p is None or p.quantity <= 0 or p.eta > task.deadline
                or p.reliability < task.service_level):
            continue
        proposals.append(p)
        by_name[p.contractor] = c

    awards: list[Award] = []
    if proposals:
        for i, qty, price in award_fn(task, proposals):
            if qty <= 0:
                continue
            p = proposals[i]
            award = Award(contractor=p.contractor, quantity=qty, unit_price=price, proposal=p)
            c = by_name[p.contractor]
            subs = getattr(c, "contractors", None)
            make = getattr(c, "subtasks", None)
            if subs and make is not None and _depth < max_depth:
                for sub in make(task, qty):
                    award.subcontracts.append(run_contract_net(
                        sub, subs, manager=p.contractor, award_fn=award_fn,
                        max_depth=max_depth, _depth=_depth + 1, _ancestors=path))
            awards.append(award)
    return ContractNode(task=task, manager=manager, proposals=proposals,
                        awards=awards, depth=_depth)


@dataclass
class SimpleContractor:
    """A contractor quoting ``unit_cost * (1 + markup)`` for task kinds it
    serves, up to ``capacity`` units.

    If it has ``contractors`` it subcontracts: for every kind in
    ``outsource_kinds`` it issues a subtask of ``outsource_share`` times its
    awarded quantity (same deadline and service level).
    """

    name: str
    kinds: frozenset[str] | set[str]
    capacity: float
    unit_cost: float
    markup: float = 0.1
    reliability: float = 1.0
    reputation: float = 1.0
    lead_time: float = 0.0
    contractors: list[Any] = field(default_factory=list)
    outsource_kinds: tuple[str, ...] = ()
    outsource_share: float = 1.0

    def propose(self, task: Task) -> Proposal | None:
        """Bid for a task of a kind it serves: cost plus markup, up to its capacity."""
        if task.kind not in self.kinds or self.capacity <= 0:
            return None
        return Proposal(contractor=self.name, task_id=task.task_id,
                        unit_price=self.unit_cost * (1.0 + self.markup),
                        quantity=min(self.capacity, task.quantity),
                        reliability=self.reliability, reputation=self.reputation,
                        eta=self.lead_time)

    def subtasks(self, task: Task, quantity: float) -> list[Task]:
        """The parts of a won task it subcontracts: ``outsource_share`` of the quantity for
        each kind in ``outsource_kinds``."""
        q = quantity * self.outsource_share
        return [Task(task_id=f"{task.task_id}/{self.name}/{k}", kind=k, quantity=q,
                     deadline=task.deadline, service_level=task.service_level)
                for k in self.outsource_kinds if q > 0]
