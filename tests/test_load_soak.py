"""Load and soak: 10,000 requests at concurrency 32 through the gateway routes of an emulator child process,
mixing cache hits, misses (unique bodies and cf-aig-skip-cache), OpenAI-style chat and streams. No request may
fail, and the emulator's memory must level off (its RSS is read from /proc at start, after warm-up and at
the end, and printed: run with -s, or see the junit properties)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from bench.emulator_proc import EmulatorProcess
from cfai.client import Client, GatewayOptions
from cfai.config import local_connection

pytestmark = pytest.mark.slow

TOTAL = 10_000
WARMUP = 1_000
CONCURRENCY = 32
MODEL = "@cf/meta/llama-3.1-8b-instruct"
HOT_PROMPTS = [f"Soak prompt number {i}: say something short." for i in range(8)]
# Growth allowed from after warm-up to the end. What legitimately grows in that window: the gateway log ring
# (up to 10,000 entries of a few hundred bytes: < 10 MB), cache entries of the ~800 unique-body misses
# (~1-2 KB each: < 2 MB), plus allocator slack. 48 MB is several times that, yet a leak of one response body
# or connection per request (>= 5 KB each over 9,000 requests) would cross it.
MAX_GROWTH_MB = 48.0


@dataclass(frozen=True)
class Outcome:
    kind: str
    ok: bool
    cache_status: str | None
    detail: str


def kind_of(i: int) -> str:
    r = i % 100
    if r < 2:
        return "stream"
    if r < 4:
        return "chat"
    if r < 12:
        return "miss-unique"
    if r < 20:
        return "miss-skip"
    return "hit"


def one_request(client: Client, i: int) -> Outcome:
    kind = kind_of(i)
    prompt = HOT_PROMPTS[i % len(HOT_PROMPTS)]
    body = {"prompt": prompt, "max_tokens": 16}
    if kind == "stream":
        stream = client.stream(MODEL, body, route="gateway", timeout=30)
        text = "".join(stream)
        result = stream.result
        ok = result.ok and bool(text) and not result.interrupted
    elif kind == "chat":
        result = client.chat(MODEL, [{"role": "user", "content": prompt}], route="gateway", max_tokens=16,
                             timeout=30)
        ok = result.ok and bool(result.text)
    elif kind == "miss-unique":
        result = client.run(MODEL, {**body, "prompt": f"{prompt} (unique {i})"}, route="gateway", timeout=30)
        ok = result.ok
    elif kind == "miss-skip":
        result = client.run(MODEL, body, route="gateway", gateway=GatewayOptions(skip_cache=True), timeout=30)
        ok = result.ok
    else:
        result = client.run(MODEL, body, route="gateway", timeout=30)
        ok = result.ok
    detail = "" if ok else f"{result.status} {result.error}"
    return Outcome(kind, ok, result.cache_status, detail)


@pytest.fixture(scope="module")
def soak_emulator():
    # A child process: its RSS is its own, and its event loop does not share our GIL.
    with EmulatorProcess("--speed", "100", "--no-rate-limits") as proc:
        yield proc


def run_phase(client: Client, indexes: range) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="soak") as pool:
        return list(pool.map(lambda i: one_request(client, i), indexes))


def test_load_and_soak(soak_emulator, record_property):
    rss = {"start": soak_emulator.rss_mb()}
    with Client(local_connection(soak_emulator.base_url), pool_size=CONCURRENCY) as client:
        warm = run_phase(client, range(WARMUP))
        rss["after_warmup"] = soak_emulator.rss_mb()
        measured = run_phase(client, range(WARMUP, TOTAL))
    rss["end"] = soak_emulator.rss_mb()
    for name, value in rss.items():
        record_property(f"emulator_rss_{name}_mb", round(value, 1))
    print(f"\nemulator RSS (MB): start {rss['start']:.1f}, after warm-up {rss['after_warmup']:.1f}, "
          f"end {rss['end']:.1f}")

    outcomes = warm + measured
    assert len(outcomes) == TOTAL
    failures = [o for o in outcomes if not o.ok]
    assert not failures, f"{len(failures)} failed, e.g. {failures[:3]}"
    kinds = Counter(o.kind for o in outcomes)
    assert kinds["stream"] == 200 and kinds["chat"] == 200
    # After warm-up every hot prompt is cached (TTL 300 s on the demo gateway): each repeat is a HIT.
    late_hits = Counter(o.cache_status for o in measured if o.kind == "hit")
    assert set(late_hits) == {"HIT"}, late_hits
    assert {o.cache_status for o in outcomes if o.kind.startswith("miss")} == {"MISS"}
    assert rss["end"] - rss["after_warmup"] < MAX_GROWTH_MB, rss


def test_kind_mix_is_as_documented():
    counts = Counter(kind_of(i) for i in range(TOTAL))
    assert counts == {"hit": 8000, "miss-unique": 800, "miss-skip": 800, "stream": 200, "chat": 200}
