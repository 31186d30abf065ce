"""URLs signed in process are byte for byte the ones botocore signs, or not used at all."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.auth
import botocore.session
import pytest
from botocore.config import Config

from services.common.media_store import MediaStore
from services.common.presign import Presigner, from_probe

ACCESS, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEYS = [
    "audio_clips/acme/ep-1/1000-3000.mp3",
    "prefix/audio_clips/acme/ep_1.x/0-1-accurate.wav",
    "odd/~tilde/sp ace/plus+/é/100%/a=b&c",
]


@functools.cache
def _session() -> Any:
    return botocore.session.get_session()  # its service data loads once, not per client


def botocore_client(endpoint: str | None, region: str = "us-east-1") -> Any:
    return _session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda remove_tzinfo=True: AT.replace(tzinfo=None))  # fmt: skip


def botocore_url(client: Any, key: str, expires: int, bucket: str = "tapedeck") -> str:
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )
    return url


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("http://127.0.0.1:7070", "us-east-1"),
        ("https://s3.example.test", "eu-west-3"),
        ("http://minio.local:80", "us-east-1"),
        (None, "eu-central-1"),  # AWS itself
    ],
)
@pytest.mark.usefixtures("frozen")
def test_same_url_as_botocore(endpoint: str | None, region: str) -> None:
    client = botocore_client(endpoint, region)
    probe_key = "presign-probe/x"
    presigner = from_probe(botocore_url(client, probe_key, 60), probe_key, "tapedeck",
                           ACCESS, SECRET)  # fmt: skip
    assert presigner is not None
    for key in KEYS:
        for expires in (1, 3600, 7 * 24 * 3600):
            assert presigner.url(key, expires, at=AT) == botocore_url(client, key, expires)


@pytest.mark.usefixtures("frozen")
def test_a_probe_it_cannot_reproduce_is_declined() -> None:
    client = botocore_client("http://127.0.0.1:7070")
    url = botocore_url(client, "k", 60)
    assert from_probe(url, "k", "tapedeck", ACCESS, "another-secret") is None
    assert from_probe(url, "k", "tapedeck", "another-id", SECRET) is None
    assert from_probe(url, "other-key", "tapedeck", ACCESS, SECRET) is None
    assert from_probe(url + "&X-Amz-Security-Token=t", "k", "tapedeck", ACCESS, SECRET) is None
    hosted = url.replace("127.0.0.1:7070/tapedeck/", "tapedeck.127.0.0.1:7070/")
    assert from_probe(hosted, "k", "tapedeck", ACCESS, SECRET) is None


def test_the_signature_changes_with_every_input() -> None:
    p = Presigner(base_url="http://127.0.0.1:7070", bucket_path="/tapedeck", region="us-east-1",
                  service="s3", access_key=ACCESS, secret_key=SECRET)  # fmt: skip
    base = p.url("a.mp3", 60, at=AT)
    later = AT.replace(second=6)
    variants = [p.url("b.mp3", 60, at=AT), p.url("a.mp3", 61, at=AT), p.url("a.mp3", 60, at=later)]
    signatures = {parse_qs(urlsplit(u).query)["X-Amz-Signature"][0] for u in [base, *variants]}
    assert len(signatures) == 4
    assert parse_qs(urlsplit(base).query)["X-Amz-Date"] == ["20260102T030405Z"]


async def test_the_media_store_signs_locally_with_static_credentials() -> None:
    store = MediaStore(bucket="tapedeck", key_prefix="p/", endpoint_url="http://127.0.0.1:7070",
                       access_key=ACCESS, secret_key=SECRET)  # fmt: skip
    async with store:
        assert store._presigner is not None
        url = await store.presign_get("audio_clips/a b.mp3", 600)
    parts = urlsplit(url)
    assert parts.path == "/tapedeck/p/audio_clips/a%20b.mp3"
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["600"]
    # Without static credentials (an IAM role: they rotate) botocore keeps signing.
    async with MediaStore(bucket="tapedeck", endpoint_url="http://127.0.0.1:7070") as anon:
        assert anon._presigner is None
