"""Exponential backoff with full jitter for transient failures."""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.common.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 10.0

    @classmethod
    def from_settings(cls, s: Settings) -> RetryPolicy:
        return cls(s.retry_max_attempts, s.retry_base_delay_s, s.retry_max_delay_s)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before attempt ``attempt + 1``; full jitter keeps retrying workers apart."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return (rng or random).uniform(0, cap)
