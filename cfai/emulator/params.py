"""Query-string parameters of the emulator's GET routes (catalogue search, gateway list, logs), checked once."""

from __future__ import annotations


class QueryParamError(ValueError):
    """A query parameter with a value the route refuses; the message names the parameter (answered 400)."""


def int_param(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryParamError(f"query parameter '{name}' must be an integer") from None
    if not lo <= value <= hi:
        raise QueryParamError(f"query parameter '{name}' must be between {lo} and {hi}")
    return value


def bool_param(raw: str | None, name: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise QueryParamError(f"query parameter '{name}' must be true or false")
