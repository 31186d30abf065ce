"""The HTTP client of the API commands: URL and key from flags or the environment, and
every failure turned into one line (the API's own error code and message when it sent
its error shape, ``{"error": {"code", "message"}}``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from services.cli.args import FAILED, USAGE, CliError

if TYPE_CHECKING:
    import httpx

URL_ENV = "TAPEDECK_API_URL"
KEY_ENV = "TAPEDECK_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0


def add_api_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API")
    group.add_argument(
        "--api-url", help=f"the API's base URL (default ${URL_ENV}, else {DEFAULT_URL})"
    )
    group.add_argument("--key", help=f"API key (default ${KEY_ENV})")
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="seconds one API call may take",
    )


class ApiFailure(CliError):
    """The API answered with an error: its code and message, and the HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if code else message, FAILED)
        self.http_status = status
        self.error_code = code
        self.api_message = message


def base_url(args: argparse.Namespace) -> str:
    import httpx

    raw = args.api_url or os.environ.get(URL_ENV) or DEFAULT_URL
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise CliError(f"the API URL must be an http(s) URL, got {raw!r}", USAGE)
    return str(url).rstrip("/")


def api_key(args: argparse.Namespace) -> str:
    key = args.key or os.environ.get(KEY_ENV)
    if not key or not key.strip():
        raise CliError(f"no API key: pass --key or set {KEY_ENV}", USAGE)
    return key.strip()


class Api:
    """``async with Api.from_args(args) as api: await api.get("/v1/jobs")``."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx

        self.url = url
        self._client = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "tapedeck-cli"},
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Api:
        # ``transport`` is how tests put an in-process API behind the same commands.
        return cls(
            base_url(args),
            api_key(args),
            timeout_s=args.timeout,
            transport=getattr(args, "transport", None),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return await self.request(
            "POST", path, params=params, json=json, content=content, headers=headers
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        import httpx

        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._client.request(
                method, path, params=query, json=json, content=content, headers=headers
            )
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise CliError(f"cannot reach the API at {self.url}") from None
        except httpx.TimeoutException:
            raise CliError(f"the API at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(f"the API at {self.url} failed ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise failure(response)
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"the API at {self.url} answered HTTP {response.status_code} without JSON"
            ) from None


def failure(response: httpx.Response) -> ApiFailure:
    """The API's one error shape, read defensively: a proxy in front may answer anything,
    and its body is never echoed."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        message = str(error.get("message") or error["code"])
        if status == 429 and response.headers.get("retry-after"):
            message += f" (retry after {response.headers['retry-after']} s)"
        return ApiFailure(status, error["code"], message)
    return ApiFailure(status, "", f"HTTP {status} from the API (not an API error answer)")
