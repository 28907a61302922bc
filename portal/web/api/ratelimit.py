"""A rate limit per API key: a token bucket in each worker process.

Each key may make ``rate_per_minute`` requests a minute, in bursts of as many; past that
it gets 429 with ``Retry-After`` (whole seconds until a request is allowed again). The
buckets live in the process (no database write per request): with N uvicorn workers a key
can reach N times the rate at most, which ``docs/api.md`` says.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(max(per_minute, 1))
        self.rate = self.capacity / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def wait(self, key_id: int) -> int:
        """0 if this request may go (and count it), else the seconds to wait."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
