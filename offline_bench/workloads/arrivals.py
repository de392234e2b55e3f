"""When each request arrives: all at once, or at a rate with gamma-distributed gaps.

This is `vllm bench serve`'s --request-rate / --burstiness: the gap before the next request is
Gamma(shape=burstiness, scale=1 / (rate x burstiness)), so its mean is 1/rate; burstiness 1 is a Poisson process,
below 1 burstier, above 1 more regular. The first request arrives at t=0. Seeded, so a schedule repeats exactly
and `serve-probe` can send the same one.
"""

from __future__ import annotations

import math
import random

from offline_bench.core.errors import BenchError

ARRIVAL_SEED_OFFSET = 7_919  # the schedule's random stream differs from the prompts' of the same --seed


def check_rate(rate: float | None, burstiness: float) -> None:
    if rate is not None and not rate > 0:
        raise BenchError(f"--request-rate {rate} must be positive (requests/s), or inf for all at once")
    if not burstiness > 0:
        raise BenchError(f"--burstiness {burstiness} must be positive (1 = Poisson)")


def arrival_offsets(n: int, rate: float | None, burstiness: float = 1.0, seed: int = 0) -> list[float] | None:
    """Seconds from the first request to each request's arrival; None when all arrive at once."""
    check_rate(rate, burstiness)
    if rate is None or math.isinf(rate):
        return None
    rng = random.Random(seed + ARRIVAL_SEED_OFFSET)
    scale = 1.0 / (rate * burstiness)
    out, t = [], 0.0
    for _ in range(n):
        out.append(t)
        t += rng.gammavariate(burstiness, scale)
    return out
