"""The ledger's choice between one ``$in`` find for a batch of look-ups and one find by
``_id`` per key, from what each has cost lately."""

from __future__ import annotations

from services.common.ledger import LookupPlan


def test_each_way_is_tried_once_before_the_cheaper_is_chosen() -> None:
    plan = LookupPlan()
    assert plan.one_by_one(1)  # a single key is always found by _id
    assert not plan.one_by_one(8)  # nothing measured: the batch
    plan.took(8, 0.004, one_by_one=False)
    assert plan.one_by_one(8)  # the batch measured: now the other way
    plan.took(8, 0.008, one_by_one=True)
    # 1 ms a key: the 4 ms batch is cheaper for 8 keys, not for 3.
    assert not plan.one_by_one(8)
    assert plan.one_by_one(3)


def test_the_plan_follows_a_batch_that_grows_dearer() -> None:
    # A collection that is scanned for an $in: the batch costs more as it grows.
    plan = LookupPlan(weight=0.5)
    plan.took(10, 0.002, one_by_one=False)
    plan.took(1, 0.001, one_by_one=True)
    assert not plan.one_by_one(10)
    for _ in range(4):
        plan.took(10, 0.200, one_by_one=False)
    assert plan.one_by_one(10)


def test_the_way_not_taken_is_tried_again_now_and_then() -> None:
    plan = LookupPlan(probe_every=5)
    plan.took(4, 0.100, one_by_one=False)
    plan.took(4, 0.004, one_by_one=True)
    choices = [plan.one_by_one(4) for _ in range(10)]
    assert choices == [True] * 4 + [False] + [True] * 4 + [False]
