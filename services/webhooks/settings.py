"""Webhook delivery settings."""

from __future__ import annotations

from pydantic import Field, field_validator

from services.common.settings import Settings
from services.webhooks.plan import DEFAULT_DELAYS_S, Schedule, parse_delays


class WebhookSettings(Settings):
    # Callback URLs must be https and resolve to public addresses; both off only for
    # local use and tests (a receiver on loopback).
    webhook_allow_http: bool = Field(False, alias="WEBHOOK_ALLOW_HTTP")
    webhook_allow_private: bool = Field(False, alias="WEBHOOK_ALLOW_PRIVATE")
    # A delivery is tried until it is this old, then given up.
    webhook_max_age_s: float = Field(86400.0, alias="WEBHOOK_MAX_AGE_S", gt=0)
    # Seconds between failed attempts: the 1st, 2nd, ...; the last repeats.
    webhook_retry_delays_s: str = Field(
        ",".join(f"{d:g}" for d in DEFAULT_DELAYS_S), alias="WEBHOOK_RETRY_DELAYS_S"
    )
    # How often to look for deliveries due again.
    webhook_sweep_s: float = Field(5.0, alias="WEBHOOK_SWEEP_S", gt=0)
    webhook_concurrency: int = Field(16, alias="WEBHOOK_CONCURRENCY", ge=1, le=256)
    webhook_connect_timeout_s: float = Field(5.0, alias="WEBHOOK_CONNECT_TIMEOUT_S", gt=0)
    webhook_timeout_s: float = Field(15.0, alias="WEBHOOK_TIMEOUT_S", gt=0)
    webhook_web_port: int | None = Field(None, alias="WEBHOOK_WEB_PORT")

    @field_validator("webhook_retry_delays_s")
    @classmethod
    def _delays_parse(cls, value: str) -> str:
        parse_delays(value)
        return value

    def schedule(self) -> Schedule:
        return Schedule(parse_delays(self.webhook_retry_delays_s), self.webhook_max_age_s)
