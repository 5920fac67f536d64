"""The AI Gateway half of the emulator: a real caching, rate-limiting, logging proxy in front of Workers AI.

proxy      the gateway pipeline (the /v1/{account}/{gateway}/workers-ai routes and the unified route): gateway
           lookup and authentication, cache, forwarding with timeout and retries, stream relay, logging
unified    the unified route: Workers AI's own URLs with a cf-aig-gateway-id header, through the pipeline
admin      the management API (gateway CRUD) and the logs API, in the Cloudflare v4 envelope
cache      the TTL response cache (bounded in entries and bytes) and its key
config     gateway settings and their store
headers    per-request options from the cf-aig-* headers; token usage read from responses
logs       the request log (bounded in entries and bytes) and the logs API's query
ratelimit  fixed and sliding window rate limiting
runtime    all of the above for one emulator, kept on its state
"""

from cfai.emulator.gateway.proxy import close_gateway, gateway_error, gateway_routes
from cfai.emulator.gateway.runtime import GatewayRuntime, get_runtime

__all__ = ["GatewayRuntime", "close_gateway", "gateway_error", "gateway_routes", "get_runtime"]
