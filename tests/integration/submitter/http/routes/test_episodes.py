"""``/v1/episodes`` against the real stack: uploads, objects in the bucket, refusals, tenants."""

from __future__ import annotations

import re
from pathlib import Path

from services.common.settings import Settings
from tests.integration.submitter.kit import make_tone, running_api


async def test_upload_registers_probes_and_scopes_by_tenant(
    settings: Settings, tmp_path: Path
) -> None:
    tone = await make_tone(tmp_path / "tone.mp3", seconds=3.0)
    async with running_api(settings) as api:
        acme, other = await api.key_for("acme"), await api.key_for("other")
        with tone.open("rb") as fh:
            r = await api.client.post(
                "/v1/episodes",
                headers=acme,
                files={"file": ("tone.mp3", fh, "audio/mpeg")},
                data={"episode_id": "ep-tone"},
            )
        assert r.status_code == 201, r.text
        ep = r.json()
        assert r.headers["location"] == "/v1/episodes/ep-tone"
        assert ep["episode_id"] == "ep-tone" and ep["tenant_id"] == "acme"
        assert abs(ep["duration_ms"] - 3000) <= 60
        assert ep["codec"] == "mp3" and ep["format_name"] == "mp3"
        assert ep["sample_rate"] == 44100 and ep["channels"] == 1
        assert ep["size_bytes"] == tone.stat().st_size
        assert re.fullmatch(r"episodes/acme/ep-tone/source-[0-9a-f]{12}\.mp3", ep["s3_key"])
        assert ep["bit_rate"] and 50_000 < ep["bit_rate"] < 80_000
        assert await api.runtime.media.head(ep["s3_key"]) is not None

        got = await api.client.get("/v1/episodes/ep-tone", headers=acme)
        assert got.status_code == 200 and got.json() == ep
        hidden = await api.client.get("/v1/episodes/ep-tone", headers=other)
        assert hidden.status_code == 404
        assert hidden.json()["error"]["param"] == "episode_id"

        # Ids are per tenant: another tenant can neither detect acme's ep-tone nor take it;
        # it registers an ep-tone of its own.
        with tone.open("rb") as fh:
            theirs = await api.client.post(
                "/v1/episodes",
                headers=other,
                files={"file": ("tone.mp3", fh, "audio/mpeg")},
                data={"episode_id": "ep-tone"},
            )
        assert theirs.status_code == 201, theirs.text
        assert theirs.json()["tenant_id"] == "other" and theirs.json()["s3_key"] != ep["s3_key"]
        got = await api.client.get("/v1/episodes/ep-tone", headers=acme)
        assert got.status_code == 200 and got.json() == ep
        with tone.open("rb") as fh:
            again = await api.client.post(
                "/v1/episodes",
                headers=acme,
                files={"file": ("tone.mp3", fh, "audio/mpeg")},
                data={"episode_id": "ep-tone"},
            )
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "episode_exists"

        with tone.open("rb") as fh:
            generated = await api.client.post(
                "/v1/episodes", headers=acme, files={"file": ("x.mp3", fh)}
            )
        assert generated.status_code == 201
        assert generated.json()["episode_id"].startswith("ep-")
        assert len(generated.json()["episode_id"]) == 3 + 32


async def test_registers_an_object_already_in_the_bucket(
    settings: Settings, tmp_path: Path
) -> None:
    tone = await make_tone(tmp_path / "tone.mp3", seconds=2.0)
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        await api.runtime.media.upload_file("ingest/acme/show.mp3", tone)
        r = await api.client.post(
            "/v1/episodes",
            headers=acme,
            json={"s3_key": "ingest/acme/show.mp3", "episode_id": "ep-s3"},
        )
        assert r.status_code == 201, r.text
        ep = r.json()
        assert ep["s3_key"] == "ingest/acme/show.mp3" and ep["episode_id"] == "ep-s3"
        assert abs(ep["duration_ms"] - 2000) <= 60

        # Another tenant's object, or one outside the ingest prefix, is not registrable.
        await api.runtime.media.upload_file("ingest/other/show.mp3", tone)
        for key in ("ingest/other/show.mp3", "episodes/ep-s3/x.mp3"):
            foreign = await api.client.post("/v1/episodes", headers=acme, json={"s3_key": key})
            assert foreign.status_code == 403, foreign.text
            assert foreign.json()["error"]["code"] == "forbidden_s3_key"

        missing = await api.client.post(
            "/v1/episodes", headers=acme, json={"s3_key": "ingest/acme/nothing.mp3"}
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["param"] == "s3_key"

        for body, param in (
            ({"s3_key": "../etc/passwd"}, "s3_key"),
            ({"s3_key": "a\\b"}, "s3_key"),
            ({}, "s3_key"),
            ({"s3_key": "ingest/acme/show.mp3", "episode_id": "../x"}, "episode_id"),
            ({"s3_key": "ingest/acme/show.mp3", "bogus": 1}, "bogus"),
        ):
            bad = await api.client.post("/v1/episodes", headers=acme, json=body)
            assert bad.status_code == 422, (body, bad.text)
            assert bad.json()["error"]["param"] == param, bad.text

        not_json = await api.client.post(
            "/v1/episodes",
            headers={**acme, "Content-Type": "application/json"},
            content=b"{nope",
        )
        assert not_json.status_code == 422
        assert not_json.json()["error"]["code"] == "invalid_json"

        text = await api.client.post(
            "/v1/episodes", headers={**acme, "Content-Type": "text/plain"}, content=b"x"
        )
        assert text.status_code == 415


async def test_upload_refusals(settings: Settings, tmp_path: Path) -> None:
    tone = await make_tone(tmp_path / "tone.mp3", seconds=3.0)
    limit = 10_000
    assert tone.stat().st_size > limit
    small = await make_tone(tmp_path / "small.mp3", seconds=0.5)
    assert small.stat().st_size < limit
    text = tmp_path / "notes.txt"
    text.write_text("these are not the sounds you are looking for\n" * 20)
    async with running_api(settings, UPLOAD_MAX_BYTES=limit) as api:
        acme = await api.key_for("acme")

        with text.open("rb") as fh:
            r = await api.client.post(
                "/v1/episodes", headers=acme, files={"file": ("notes.mp3", fh)}
            )
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "not_audio" and r.json()["error"]["message"]

        with tone.open("rb") as fh:
            r = await api.client.post(
                "/v1/episodes",
                headers=acme,
                files={"file": ("tone.mp3", fh)},
                data={"episode_id": "ep-big"},
            )
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        assert await api.runtime.episodes.get("acme", "ep-big") is None

        for episode_id in ("../x", "a/b", "-x", "x" * 129, "a..b"):
            with small.open("rb") as fh:
                r = await api.client.post(
                    "/v1/episodes",
                    headers=acme,
                    files={"file": ("s.mp3", fh)},
                    data={"episode_id": episode_id},
                )
            assert r.status_code == 422, episode_id
            assert r.json()["error"]["param"] == "episode_id"

        # A url-encoded form cannot carry a file.
        r = await api.client.post("/v1/episodes", headers=acme, data={"episode_id": "ep-x"})
        assert r.status_code == 415

        r = await api.client.post(
            "/v1/episodes",
            headers=acme,
            files={"other": ("x.txt", b"x")},
            data={"episode_id": "ep-x"},
        )
        assert r.status_code == 422
        assert r.json()["error"]["param"] == "other"
