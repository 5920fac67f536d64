"""Faults the local emulator injects on request: the header names and the fault kinds, defined once for the
emulator, the pages, the CLI and the tests.

Only the emulator honours these headers, and only when started with `allow_faults`; Cloudflare ignores them.
"""

from __future__ import annotations

FAULT_HEADER = "x-emulator-fault"  # value: one of FAULT_KINDS; the request fails that way
DELAY_HEADER = "x-emulator-delay-ms"  # value: N; the response takes N ms in total instead of the latency model

FAULT_KINDS: tuple[str, ...] = ("500", "503", "429", "timeout", "drop-stream", "malformed-json")
# Kinds that stall (`timeout`: up to 30 s) or break a response half-way (`drop-stream`).
SLOW_OR_PARTIAL_FAULT_KINDS: tuple[str, ...] = ("timeout", "drop-stream")
# Kinds that answer at once with a whole response (an error, or JSON that does not parse): what a batch demo
# can inject without holding a worker for half a minute.
INSTANT_FAULT_KINDS: tuple[str, ...] = tuple(k for k in FAULT_KINDS if k not in SLOW_OR_PARTIAL_FAULT_KINDS)
