"""Standard Webhooks signing: the reference library's vector, an independent HMAC, and
every way a request fails to verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest

from services.webhooks.secrets import generate_secret
from services.webhooks.signing import (
    WebhookVerificationError,
    headers,
    secret_key,
    sign,
    verify,
)

# From the standard-webhooks reference implementation's test suite
# (libraries/python/tests/test_webhooks.py, test_sign_function).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_700_000_000
Change = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]
BODY = b'{"type":"job.completed","data":{"job_id":"j1"}}'


def independent(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, msg_id.encode() + b"." + str(timestamp).encode() + b"." + body,
                   hashlib.sha256)  # fmt: skip
    return "v1," + base64.b64encode(mac.digest()).decode()


def test_the_reference_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    signed = headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    verify(SPEC_SECRET, signed, SPEC_BODY, now=SPEC_TIMESTAMP + 10)


def test_matches_an_independent_hmac() -> None:
    for _ in range(20):
        secret = generate_secret()
        assert sign(secret, "msg_abc", NOW, BODY) == independent(secret, "msg_abc", NOW, BODY)


def test_headers_carry_one_signature_per_secret() -> None:
    new, old = generate_secret(), generate_secret()
    signed = headers([new, old], "msg_1", NOW, BODY)
    assert signed["webhook-id"] == "msg_1"
    assert signed["webhook-timestamp"] == str(NOW)
    assert signed["webhook-signature"].split(" ") == [
        independent(new, "msg_1", NOW, BODY), independent(old, "msg_1", NOW, BODY)
    ]  # fmt: skip
    # A receiver that knows either secret accepts it, whatever the header names' case.
    upper = {k.upper(): v for k, v in signed.items()}
    verify(new, upper, BODY, now=NOW)
    verify(old, signed, BODY, now=NOW)
    verify([generate_secret(), old], signed, BODY, now=NOW)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h, b: (h, b + b" "), "no signature matches"),
        (lambda h, b: ({**h, "webhook-id": "msg_2"}, b), "no signature matches"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b), "no signature matches"),
        (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), "no signature matches"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not an integer"),
        (lambda h, b: ({**h, "webhook-id": "msg.1"}, b), "holds a '.'"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
    ],
)
def test_tampering_fails(change: Change, why: str) -> None:
    secret = generate_secret()
    signed, body = change(headers(secret, "msg_1", NOW, BODY), BODY)
    with pytest.raises(WebhookVerificationError, match=why):
        verify(secret, signed, body, now=NOW)


def test_a_wrong_secret_fails() -> None:
    signed = headers(generate_secret(), "msg_1", NOW, BODY)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(generate_secret(), signed, BODY, now=NOW)


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_the_tolerance_fail(skew: int) -> None:
    secret = generate_secret()
    signed = headers(secret, "msg_1", NOW, BODY)
    verify(secret, signed, BODY, now=NOW + skew - (1 if skew > 0 else -1))
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(secret, signed, BODY, now=NOW + skew)
    verify(secret, signed, BODY, now=NOW + skew, tolerance_s=600)


def test_ids_with_dots_are_not_signed() -> None:
    with pytest.raises(ValueError, match=r"'\.'"):
        sign(generate_secret(), "msg.1", NOW, BODY)


def test_a_bad_secret_is_not_quoted() -> None:
    for bad in ("whsec_not base64!", "whsec_", "plain-text-secret"):
        with pytest.raises(ValueError) as caught:
            secret_key(bad)
        assert "base64!" not in str(caught.value) and "plain-text" not in str(caught.value)
    with pytest.raises(ValueError, match="no secret"):
        headers([], "msg_1", NOW, BODY)
