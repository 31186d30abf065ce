"""Scrubbing text that goes to logs or operator fields: signed URLs lose their query
strings, and credentials that slip into messages are masked."""

from __future__ import annotations

import re

_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*", re.IGNORECASE)
_USERINFO = re.compile(r"(https?://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_SECRETS = re.compile(
    r"(?i)\b(x-amz-credential|x-amz-signature|x-amz-security-token|signature|"
    r"awsaccesskeyid|access_key|secret_key|api[_-]?key|authorization|token)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;]+)"
)
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")


def redact(text: str) -> str:
    text = _URL_QUERY.sub(r"\1?<redacted>", text)
    text = _USERINFO.sub(r"\1<redacted>@", text)
    text = _SECRETS.sub(r"\1\2<redacted>", text)
    return _AWS_KEY_ID.sub("<redacted>", text)
