"""Scrubbing: every kind of credential Tapedeck handles is masked, and what operators
need to read (object keys, ordinary words, the API key's id) is left alone."""

from __future__ import annotations

import pytest

from services.common.redact import redact, redact_literals

API_KEY = "td_0123456789ab_" + "Zq3-_x" * 7 + "A"  # 12 hex id, 43-character secret
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/9+vJ0Q0d4E="
FAL = "8a1c2e4f-1b2c-4d5e-9f00-123456789abc:0f1e2d3c4b5a69788796a5b4c3d2e1f0"
REPLICATE = "r8_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78"
ELEVEN = "sk_3f2a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SIG = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
CRED = "AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"rejected key {API_KEY} for acme", API_KEY.split("_", 2)[2]),
        (f"Authorization: Bearer {API_KEY}", API_KEY),
        (f"signing with {WHSEC} now", WHSEC.removeprefix("whsec_")),
        (f"{{'Authorization': 'Key {FAL}'}}", FAL),
        (f"Authorization: Key {FAL}", FAL),
        (f"POST /v1/predictions Authorization: Token {REPLICATE}", REPLICATE),
        (f"headers={{'xi-api-key': '{ELEVEN}'}}", ELEVEN),
        (f"xi-api-key: {ELEVEN}", ELEVEN),
        (f"FAL_KEY={FAL}", FAL),
        (f"REPLICATE_API_TOKEN={REPLICATE} started", REPLICATE),
        (f"ELEVENLABS_API_KEY: {ELEVEN}", ELEVEN),
        (f"S3_SECRET_KEY={S3_SECRET}", S3_SECRET),
        (f"aws_secret_access_key = '{S3_SECRET}'", S3_SECRET),
        (f'{{"secret_key": "{S3_SECRET}"}}', S3_SECRET),
        (f"GET https://s3.example/b/a.mp3?X-Amz-Signature={SIG}&X-Amz-Credential={CRED}", SIG),
        (f"GET https://s3.example/b/a.mp3?X-Amz-Credential={CRED}&x=1", "AKIAIOSFODNN7EXAMPLE"),
        (f"X-Amz-Signature={SIG} X-Amz-Credential={CRED}", SIG),
        (f"X-Amz-Signature={SIG} X-Amz-Credential={CRED}", "20260101/us-east-1"),
        (f"legacy url ...&Signature={SIG}&Expires=1", SIG),
        ("https://user:hunter22@example.com/x", "hunter22"),
        ("key id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        (f"bearer {REPLICATE}", REPLICATE),
    ],
)
def test_each_kind_of_secret_is_masked(text: str, secret: str) -> None:
    scrubbed = redact(text)
    assert secret not in scrubbed, scrubbed
    assert "<redacted>" in scrubbed


def test_the_api_key_id_and_the_shape_of_the_text_stay() -> None:
    assert redact(f"key {API_KEY} revoked") == "key td_0123456789ab_<redacted> revoked"
    assert redact('{"api_key": "abc"}') == '{"api_key": "<redacted>"}'
    assert redact("Authorization: Bearer abcdefgh12") == "Authorization: <redacted>"


@pytest.mark.parametrize(
    "text",
    [
        "no such key media/acme/s1.mp4",
        "s3_key=audio/job-1/a1-scene-0.mp3 output_key=renders/job-1/result-v1.mp4",
        "idempotency_key=k1 for job-4bf92f3577b34da6",
        "Key point: the token count is 12",
        "whsec_ + base64 of 32 bytes",
        "max_tokens=100",
        "stage merge.mux failed with ffmpeg_failed",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_known_values_are_masked_wherever_they_stand() -> None:
    text = "opened with tapedeck-local-secret and tapedeck-local-secret-2"
    assert (
        redact_literals(text, ("tapedeck-local-secret", "tapedeck-local-secret-2"))
        == "opened with <redacted> and <redacted>"
    )
    assert redact_literals(text, ()) == text
