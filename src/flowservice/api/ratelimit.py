"""Per-client rate limiting: a token bucket per client id, in this process's memory.

Each client id has a bucket of `burst` tokens that refills at `rate` tokens per second; a request
takes one token, and a request that finds the bucket empty is refused with 429 and `Retry-After`
(the whole seconds until a token is back). Buckets live in memory, per process: with N server
processes behind a balancer a client gets up to N times the rate. That is the trade made for the
embedded deployment (one `flowservice serve`), where no shared store is at hand and the point is to
keep one runaway client from starving the others, not to meter usage exactly.

Memory is bounded: a bucket that has refilled completely holds no information, so buckets idle that
long are dropped when the table grows past `MAX_BUCKETS` (a sweep at most once per refill time, so
many busy clients do not make every request pay for one).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

MAX_BUCKETS = 10_000


class TokenBuckets:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("the rate must be above 0 (a rate of 0 means no limiter at all)")
        self.rate = rate
        self.burst = burst if burst > 0 else max(1, math.ceil(rate))
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._swept_at = float("-inf")

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 if one was there, else the seconds until one will be."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > MAX_BUCKETS and now - self._swept_at >= self.burst / self.rate:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled by now: a full bucket is the same as no bucket."""
        full_after = self.burst / self.rate
        self._swept_at = now
        for key in [k for k, (_, at) in self._buckets.items() if now - at >= full_after]:
            del self._buckets[key]


def retry_after(wait_s: float) -> str:
    """The Retry-After header's value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait_s)))
