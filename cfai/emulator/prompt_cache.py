"""Prompt (prefix) caching with `x-session-affinity` (docs/PROTOCOL.md 4.2).

With the header, a request lands on the instance that served the session before: the prompt's longest
prefix already seen there (in whole blocks, the last token always computed) is cached, reported as
`cached_tokens` and skipped in prefill, so the first token comes sooner. Without it, requests spread over
instances and the emulator reports no cache hits (emulator choice: Cloudflare gives no figures).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from cfai.emulator.state import EmulatorState
from cfai.emulator.textgen import GenRequest, tokenize

SESSION_HEADER = "x-session-affinity"
BLOCK_TOKENS = 16  # caching works in blocks (prompt-caching.mdx); the size is ours
MAX_SESSIONS = 1024
PROMPTS_PER_SESSION = 8
PREFILL_SHARE = 0.8  # share of the time to first token that is prefill (what a cache hit saves)


def prompt_token_ids(req: GenRequest) -> list[str]:
    """The prompt as tokens, counted exactly as GenRequest.prompt_tokens() counts them."""
    if req.prompt is not None:
        return ["<bos>", *tokenize(req.prompt)]
    out: list[str] = []
    for m in req.messages or []:
        out += ["<start>", *tokenize(m["role"]), *tokenize(m["content"]), "<end>"]
    return [*out, "<assistant>"]


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PromptCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[tuple[str, str], list[list[str]]] = OrderedDict()

    def lookup_and_store(self, session: str, model: str, tokens: list[str]) -> int:
        """Cached prefix tokens for this prompt in this session, then remember the prompt."""
        key = (session, model)
        with self._lock:
            seen = self._sessions.pop(key, [])
            best = max((_common_prefix(tokens, old) for old in seen), default=0)
            seen = [tokens, *[old for old in seen if old != tokens]][:PROMPTS_PER_SESSION]
            self._sessions[key] = seen
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        best = min(best, len(tokens) - 1)  # the last prompt token is always computed
        return max(0, best // BLOCK_TOKENS * BLOCK_TOKENS)


def cache_of(state: EmulatorState) -> PromptCache:
    cache = state.extras.get("prompt_cache")
    if cache is None:
        cache = state.extras["prompt_cache"] = PromptCache()
    return cache


def cached_tokens(state: EmulatorState, session: str | None, model: str, req: GenRequest) -> int:
    if not session:
        return 0
    return cache_of(state).lookup_and_store(session, model, prompt_token_ids(req))


def ttft_saving_s(ttft_s: float, cached: int, prompt_tokens: int) -> float:
    """Seconds a warm prefix takes off the time to first token."""
    if cached <= 0 or prompt_tokens <= 0:
        return 0.0
    return ttft_s * PREFILL_SHARE * min(1.0, cached / prompt_tokens)
