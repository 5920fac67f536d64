"""Forwarding text generation to a local OpenAI-compatible server (Ollama, llama.cpp, vLLM ...)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


class UpstreamError(Exception):
    """The upstream server could not be reached or answered with an error."""


def chat_url(base: str) -> str:
    """`http://host:port` or `http://host:port/v1` -> `.../v1/chat/completions`."""
    base = base.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


class Upstream:
    def __init__(self, base_url: str, model: str | None = None):
        self.url = chat_url(base_url)
        self.model = model
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))

    def _body(self, body: dict[str, Any], stream: bool) -> dict[str, Any]:
        out = {**body, "stream": stream}
        if self.model:
            out["model"] = self.model
        if stream:
            out["stream_options"] = {"include_usage": True}
        return out

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = await self._client.post(self.url, json=self._body(body, False))
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream {self.url} is unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            raise UpstreamError(f"upstream {self.url} answered HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise UpstreamError(f"upstream {self.url} answered invalid JSON") from exc

    async def open_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Connects first (so failures surface before our response starts), then yields parsed chunks."""
        request = self._client.build_request("POST", self.url, json=self._body(body, True))
        try:
            resp = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream {self.url} is unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            text = (await resp.aread()).decode(errors="replace")[:200]
            await resp.aclose()
            raise UpstreamError(f"upstream {self.url} answered HTTP {resp.status_code}: {text}")

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            try:
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        yield json.loads(data)
                    except ValueError:
                        continue
            finally:
                await resp.aclose()

        return chunks()

    async def aclose(self) -> None:
        await self._client.aclose()


def chunk_text(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or []
    if choices:
        delta = choices[0].get("delta") or {}
        return delta.get("content") or ""
    return ""


def message_text(body: dict[str, Any]) -> str:
    choices = body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return message.get("content") or choices[0].get("text") or ""
