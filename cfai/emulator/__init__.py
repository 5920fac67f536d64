"""Local Workers AI + AI Gateway emulator (starlette + uvicorn). Start it with `start_emulator()` or
`python -m cfai.emulator`."""

from cfai.emulator.server import EmulatorHandle, start_emulator
from cfai.emulator.state import EmulatorOptions, EmulatorState

__all__ = ["EmulatorHandle", "EmulatorOptions", "EmulatorState", "start_emulator"]
