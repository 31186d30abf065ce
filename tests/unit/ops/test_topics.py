"""Offsets and lag put together from what the cluster reports."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from services.ops.topics import GroupOffset, PartitionInfo, TopicInfo, assemble, lag_of


@pytest.mark.parametrize(
    ("committed", "earliest", "latest", "lag"),
    [(5, 0, 9, 4), (9, 0, 9, 0), (None, 3, 9, 6), (1, 4, 9, 5), (None, 0, 0, 0)],
)
def test_lag_counts_what_is_left_to_read(
    committed: int | None, earliest: int, latest: int, lag: int
) -> None:
    assert lag_of(committed, earliest, latest) == lag


def test_a_group_shows_on_every_partition_of_a_topic_it_reads() -> None:
    a, b = TopicPartition("t.a", 0), TopicPartition("t.a", 1)
    found = assemble(
        ["t.a", "t.b"],
        {"t.a": [0, 1], "t.b": [0]},
        {a: 0, b: 2, TopicPartition("t.b", 0): 0},
        {a: 10, b: 5, TopicPartition("t.b", 0): 1},
        {"g1": {a: 7}, "g2": {TopicPartition("t.b", 0): 1}},
    )
    assert found == [
        TopicInfo(
            "t.a",
            [
                PartitionInfo(0, 0, 10, {"g1": GroupOffset(7, 3)}),
                PartitionInfo(1, 2, 5, {"g1": GroupOffset(None, 3)}),
            ],
        ),
        TopicInfo("t.b", [PartitionInfo(0, 0, 1, {"g2": GroupOffset(1, 0)})]),
    ]
