"""Local Workers AI + AI Gateway emulator (starlette + uvicorn). Start it with `start_emulator()` or
`python -m cfai.emulator`."""

from cfai.emulator.server import EmulatorHandle, start_emulator
from cfai.emulator.state import DEMO_NETWORK_JITTER_MS, DEMO_NETWORK_RTT_MS, EmulatorOptions, EmulatorState

__all__ = ["DEMO_NETWORK_JITTER_MS", "DEMO_NETWORK_RTT_MS", "EmulatorHandle", "EmulatorOptions", "EmulatorState",
           "start_emulator"]
