"""The latency model: time to first token plus per-token time, seeded jitter, all divided by `speed`."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from cfai.emulator.models_catalog import ModelSpec


@dataclass
class Schedule:
    """When each token is due, in seconds after the request started."""

    ttft_s: float
    token_due_s: list[float]  # token_due_s[0] == ttft_s

    @property
    def total_s(self) -> float:
        return self.token_due_s[-1] if self.token_due_s else self.ttft_s


def token_schedule(spec: ModelSpec, n_tokens: int, rng: random.Random, speed: float) -> Schedule:
    # Log-normal jitter on the first token (queueing, prefill), milder jitter per token (decoding).
    ttft = spec.ttft_ms * math.exp(rng.gauss(0.0, 0.15)) / 1000.0 / speed
    due, t = [], ttft
    for i in range(n_tokens):
        if i:
            t += spec.per_token_ms * rng.uniform(0.8, 1.2) / 1000.0 / speed
        due.append(t)
    return Schedule(ttft, due)


def fixed_latency(spec: ModelSpec, rng: random.Random, speed: float, units: int = 1) -> float:
    """Seconds for a non-generative call; grows mildly with the number of inputs (embedding batches)."""
    base = spec.latency_ms * (1.0 + 0.02 * max(0, units - 1))
    return base * math.exp(rng.gauss(0.0, 0.1)) / 1000.0 / speed


async def sleep_until(loop_start: float, due_s: float) -> None:
    """Sleep until `due_s` after `loop_start` (a loop.time() value); late tokens go out without sleeping."""
    delay = loop_start + due_s - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)
