"""Dead letters: topics, a topic's messages, one message decoded; replay as it was or
edited (the reason shown when the edit is refused, the edit kept), discard, selections,
and who did what."""

from __future__ import annotations

import json

from tests.support.console import DLQ
from tests.unit.submitter.console.conftest import Console

MESSAGE = f"/console/dlq/{DLQ}/0/1"


async def test_topics_and_their_messages(console: Console) -> None:
    topics = await console.client.get("/console/dlq", headers=console.signed_in())
    assert topics.status_code == 200 and f'href="/console/dlq/{DLQ}"' in topics.text
    listed = await console.client.get(f"/console/dlq/{DLQ}", headers=console.signed_in())
    assert listed.status_code == 200
    assert 'data-ref="0-0" data-state="pending"' in listed.text
    assert "malformed event: invalid JSON" in listed.text


async def test_a_message_shows_headers_and_decoded_body(console: Console) -> None:
    r = await console.client.get(MESSAGE, headers=console.signed_in())
    assert r.status_code == 200
    assert "dlq.stage" in r.text and "clipper" in r.text
    pretty = json.dumps({"event_type": "clip.requested", "episode_id": "ep-1"}, indent=2)
    assert pretty.replace('"', "&#34;") in r.text  # indented, in the textarea and the view


async def test_an_invalid_edit_is_refused_with_the_reason_and_kept(console: Console) -> None:
    r = await console.client.post(
        MESSAGE + "/replay",
        data={"mode": "edited", "body": '{"episode_id": "ep-2"}', "csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert r.status_code == 422
    assert "event_type is required" in r.text and 'role="alert"' in r.text
    assert "{&#34;episode_id&#34;: &#34;ep-2&#34;}" in r.text  # the operator's edit is kept
    assert console.dead_letters.replayed == []


async def test_an_edited_replay_sends_the_edit(console: Console) -> None:
    body = '{"event_type": "clip.requested", "episode_id": "ep-2"}'
    r = await console.client.post(
        MESSAGE + "/replay",
        data={"mode": "edited", "body": body, "csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert r.status_code == 303 and r.headers["location"] == MESSAGE + "?notice=replayed"
    ref, sent, actor = console.dead_letters.replayed[0]
    assert (ref, sent, actor.name) == ("0-1", body.encode(), "Ada")
    page = await console.client.get(r.headers["location"], headers=console.signed_in())
    assert "Replayed to the original topic" in page.text
    assert 'class="badge d-replayed"' in page.text and "Ada (" in page.text
    # Settled: no more buttons for it.
    assert 'id="letter-settled"' in page.text and 'id="edit-body"' not in page.text


async def test_replay_as_it_was_and_twice(console: Console) -> None:
    data = {"mode": "original", "body": "ignored", "csrf_token": console.csrf}
    first = await console.client.post(MESSAGE + "/replay", data=data, headers=console.signed_in())
    assert first.status_code == 303 and console.dead_letters.replayed[0][1] is None
    again = await console.client.post(MESSAGE + "/replay", data=data, headers=console.signed_in())
    assert again.status_code == 409 and "already replayed" in again.text


async def test_discard(console: Console) -> None:
    r = await console.client.post(
        MESSAGE + "/discard", data={"csrf_token": console.csrf}, headers=console.signed_in()
    )
    assert r.status_code == 303 and console.dead_letters.discarded[0][0] == "0-1"


async def test_a_selection(console: Console) -> None:
    r = await console.client.post(
        f"/console/dlq/{DLQ}/selection",
        data={"action": "discard", "ref": ["0-0", "0-1", "9-9x"], "csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert r.status_code == 200
    assert [d[0] for d in console.dead_letters.discarded] == ["0-0", "0-1"]
    assert "not a message reference" in r.text
    assert r.text.count('data-state="discarded"') == 2
    assert 'name="ref"' not in r.text  # nothing left to select
    nothing = await console.client.post(
        f"/console/dlq/{DLQ}/selection",
        data={"action": "replay", "csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert nothing.status_code == 422 and "select at least one" in nothing.text


async def test_dlq_posts_need_the_csrf_token(console: Console) -> None:
    r = await console.client.post(MESSAGE + "/discard", headers=console.signed_in())
    assert r.status_code == 403 and console.dead_letters.discarded == []


async def test_unknown_topics_and_messages_are_404_pages(console: Console) -> None:
    for path in ("/console/dlq/not-a-dlq", f"/console/dlq/{DLQ}/0/99", "/console/dlq/x..dlq/0/1"):
        r = await console.client.get(path, headers=console.signed_in())
        assert r.status_code == 404 and "<html" in r.text, path
