"""Forward-only stage transitions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.common.job_store import RANK, TERMINAL, StageStatus, can_move, predecessors

statuses = st.sampled_from(list(StageStatus))


@given(st.lists(statuses, min_size=1, max_size=30))
def test_any_event_sequence_only_moves_forward(seq: list[StageStatus]) -> None:
    current: StageStatus | None = None
    for target in seq:
        if can_move(current, target):
            assert current is None or RANK[target] > RANK[current]
            current = target
    # Once terminal, nothing else moves it.
    if current in TERMINAL:
        assert not any(can_move(current, s) for s in StageStatus)


@given(statuses)
def test_predecessors_are_exactly_the_lower_ranks(target: StageStatus) -> None:
    assert set(predecessors(target)) == {s.value for s in StageStatus if can_move(s, target)}
