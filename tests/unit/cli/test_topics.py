"""``tapedeck topics describe``: offsets and lag per topic and group, as rows and JSON."""

from __future__ import annotations

from services.cli.topics import _matches, describe_json, rows
from services.ops.topics import GroupOffset, PartitionInfo, TopicInfo

INFOS = [
    TopicInfo(
        "p.tapedeck.clip.requests",
        [
            PartitionInfo(
                0,
                0,
                10,
                {"p.tapedeck-clipper": GroupOffset(7, 3), "p.other": GroupOffset(None, 10)},
            ),
            PartitionInfo(
                1, 5, 5, {"p.tapedeck-clipper": GroupOffset(5, 0), "p.other": GroupOffset(None, 0)}
            ),
        ],
    ),
    TopicInfo("p.tapedeck.clip.requests.dlq", [PartitionInfo(0, 0, 2)]),
]


def test_json_sums_messages_and_lag_per_group() -> None:
    [clips, dlq] = describe_json(INFOS, None)
    assert clips["messages"] == 10 and clips["lag"] == {"p.other": 10, "p.tapedeck-clipper": 3}
    assert clips["partitions"][0] == {
        "partition": 0,
        "earliest": 0,
        "latest": 10,
        "messages": 10,
        "groups": {
            "p.other": {"committed": None, "lag": 10},
            "p.tapedeck-clipper": {"committed": 7, "lag": 3},
        },
    }
    assert dlq == {
        "topic": "p.tapedeck.clip.requests.dlq",
        "partitions": [{"partition": 0, "earliest": 0, "latest": 2, "messages": 2, "groups": {}}],
        "messages": 2,
        "lag": {},
    }
    [only] = describe_json(INFOS[:1], ["p.tapedeck-clipper"])
    assert only["lag"] == {"p.tapedeck-clipper": 3}


def test_rows_per_topic_or_per_partition() -> None:
    described = describe_json(INFOS, None)
    assert rows(described, per_partition=False) == [
        ["p.tapedeck.clip.requests", 2, 10, "p.other", 10],
        ["p.tapedeck.clip.requests", 2, 10, "p.tapedeck-clipper", 3],
        ["p.tapedeck.clip.requests.dlq", 1, 2, None, None],
    ]
    per = rows(described, per_partition=True)
    assert per[0] == ["p.tapedeck.clip.requests", 0, 0, 10, "p.other", None, 10]
    assert per[-1] == ["p.tapedeck.clip.requests.dlq", 0, 0, 2, None, None, None]


def test_topics_are_picked_by_any_of_their_names() -> None:
    name = "p.tapedeck.clip.requests"
    assert all(_matches(name, [w], "p.") for w in (name, "tapedeck.clip.requests", "clip.requests"))
    assert not _matches(name, ["clip.results"], "p.") and _matches(name, None, "p.")
