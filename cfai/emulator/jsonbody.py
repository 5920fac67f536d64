"""Request bodies as JSON, refused with a clear message (answered 400) rather than failing later with a 500.

Python's json accepts what a response can never carry back: lone surrogates (`"\\ud800"` decodes to a str
that cannot be encoded as UTF-8), NaN and Infinity, numbers beyond a float, and nesting deep enough to
exhaust the recursion limit. Cloudflare's JSON parser refuses or cannot echo these either.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from cfai.emulator.envelope import InputError

MAX_DEPTH = 64  # nesting of objects and arrays; real request bodies use a handful of levels
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A surrogate can only come from a \uD800-\uDFFF escape (UTF-8 input cannot carry one): look for strings
# holding one only when the raw body has such an escape.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"Malformed JSON in request body: number {text[:40]} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise InputError(f"Malformed JSON in request body: {name} is not JSON")


def _check(value: Any, strings: bool) -> None:
    """Depth and string check without recursion (a hostile body must not exhaust the stack here either)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if strings and _SURROGATE.search(item):
                raise InputError("Malformed JSON in request body: a string holds a lone UTF-16 surrogate")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise InputError(f"Malformed JSON in request body: nested deeper than {MAX_DEPTH} levels")
            children = list(item.items()) if isinstance(item, dict) else item
            for child in children:
                if isinstance(child, tuple):  # a (key, value) pair of an object
                    stack.append((child[0], depth))
                    stack.append((child[1], depth + 1))
                else:
                    stack.append((child, depth + 1))


def loads(raw: bytes | str) -> Any:
    """Decode and check a JSON document; raises InputError with a message fit for the client."""
    try:
        value = json.loads(raw, parse_float=_finite, parse_constant=_no_constants)
    except InputError:
        raise
    except RecursionError:
        raise InputError(f"Malformed JSON in request body: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError("Malformed JSON in request body") from None
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    _check(value, strings=_SURROGATE_ESCAPE.search(raw_bytes) is not None)
    return value


def loads_object(raw: bytes) -> dict[str, Any]:
    """A JSON object body (an empty body is not one)."""
    body = loads(raw) if raw.strip() else None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body
