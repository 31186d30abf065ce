"""Scrubbing text that goes to logs or operator fields: signed URLs lose their query
strings, and credentials that slip into messages are masked: Tapedeck API keys, webhook
signing secrets, ``Authorization``-style credentials, and ``name=value`` / ``name: value``
pairs whose name says secret (provider keys such as ``FAL_KEY``, S3 secret keys,
presigned-URL signatures)."""

from __future__ import annotations

import re

_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*", re.IGNORECASE)
_USERINFO = re.compile(r"(https?://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
# A secret's name may carry a prefix (S3_SECRET_KEY, FAL_KEY, xi-api-key); its value may be
# quoted, or an HTTP credential with its scheme ("Authorization: Key abc").
_SECRETS = re.compile(
    r"(?i)\b([a-z0-9_-]*?(?:x-amz-credential|x-amz-signature|x-amz-security-token|signature|"
    r"awsaccesskeyid|access_key|secret_key|secret_access_key|api[_-]?key|api[_-]?token|"
    r"authorization|token|fal_key|client_secret|password|webhook_secret|private_key))"
    r"(['\"]?\s*[=:]\s*)"
    r"(\"[^\"]*\"|'[^']*'|(?:(?:bearer|basic|key|token)\s+)?[^\s&,;'\"]+)"
)
# Credentials after an HTTP auth scheme, wherever they stand. "Key" and "Token" (fal.ai,
# Replicate) are common words, so only a capitalised scheme and a value with a digit and
# no slash (not an object key) count.
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=:-]{8,}")
_KEY_SCHEME = re.compile(r"\b(Key|Token)(\s+)(?=[A-Za-z0-9._~+=:-]*\d)[A-Za-z0-9._~+=:-]{8,}")
# td_<key id>_<secret>: the key id names the key (it is shown in listings); the rest is secret.
_API_KEY = re.compile(r"td_([0-9a-f]{12})_[A-Za-z0-9_-]{43}[A-Za-z0-9_-]*")
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")

REDACTED = "<redacted>"


def _masked_value(match: re.Match[str]) -> str:
    value = match.group(3)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{match.group(2)}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    text = _URL_QUERY.sub(rf"\1?{REDACTED}", text)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _API_KEY.sub(rf"td_\1_{REDACTED}", text)
    text = _WEBHOOK_SECRET.sub(f"whsec_{REDACTED}", text)
    text = _SECRETS.sub(_masked_value, text)
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _KEY_SCHEME.sub(rf"\1\2{REDACTED}", text)
    return _AWS_KEY_ID.sub(REDACTED, text)


def redact_literals(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any of ``secrets`` (values known to be secret, e.g. the process's
    configured keys), longest first so no part of a longer one is left behind."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
