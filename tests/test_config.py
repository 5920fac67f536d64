"""Connection settings: validation that names the field, token masking, sources of credentials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfai.config import (
    ConfigError,
    Connection,
    check_model_id,
    cloudflare_settings,
    connection_from_settings,
    local_connection,
    validate_account_id,
    validate_gateway_id,
)

CANARY = "canary-secret-token-123456"


def test_account_id_rules():
    assert validate_account_id(" " + "a1" * 16 + " ") == "a1" * 16
    for bad in ("", "A1" * 16, "a1" * 15, "g" * 32, "a1" * 17):
        with pytest.raises(ConfigError) as info:
            validate_account_id(bad)
        assert info.value.field == "account_id" and "32" in str(info.value)


@pytest.mark.parametrize("good", ["default", "my-gateway", "a", "x_1", "a" * 64])
def test_gateway_id_accepts(good):
    assert validate_gateway_id(good) == good


@pytest.mark.parametrize("bad", ["", "-a", "a-", "a--b", "A", "a b", "a" * 65, "a.b"])
def test_gateway_id_refuses(bad):
    with pytest.raises(ConfigError) as info:
        validate_gateway_id(bad)
    assert info.value.field == "gateway_id"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=64))
def test_gateway_id_property(value):
    ok = not value.startswith("-") and not value.endswith("-") and "--" not in value
    try:
        validate_gateway_id(value)
        assert ok
    except ConfigError:
        assert not ok


def test_model_ids_warn_but_never_refuse_unfamiliar_prefixes():
    assert check_model_id("@cf/meta/llama-3.1-8b-instruct") is None
    assert check_model_id("@hf/nousresearch/hermes-2-pro-mistral-7b") is None
    assert "@cf/" in check_model_id("@cloudflare/meta/llama-2-7b")
    with pytest.raises(ConfigError):
        check_model_id("  ")
    with pytest.raises(ConfigError):
        check_model_id("@cf/meta/has space")


def test_token_never_in_repr_or_str():
    conn = Connection(mode="cloudflare", account_id="a" * 32, api_token=CANARY, gateway_token=CANARY + "gw")
    for text in (repr(conn), str(conn), f"{conn}", repr([conn])):
        assert CANARY not in text
        assert "****" in text


def test_validate_names_each_field():
    conn = Connection(mode="cloudflare", account_id="nope", api_token="", gateway_id="Bad--Id")
    fields = {p.field for p in conn.validate()}
    assert fields == {"account_id", "api_token", "gateway_id"}
    assert local_connection("http://127.0.0.1:1").validate() == []


def test_urls():
    conn = Connection(mode="cloudflare", account_id="a" * 32, api_token="t", gateway_id="gw")
    assert conn.run_url("@cf/meta/llama-3.1-8b-instruct") == (
        "https://api.cloudflare.com/client/v4/accounts/" + "a" * 32 + "/ai/run/@cf/meta/llama-3.1-8b-instruct"
    )
    assert conn.run_url("@cf/meta/llama-3.1-8b-instruct", "gateway") == (
        "https://gateway.ai.cloudflare.com/v1/" + "a" * 32 + "/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct"
    )
    assert conn.chat_url("gateway").endswith("/gw/workers-ai/v1/chat/completions")
    assert conn.openai_base_url().endswith("/ai/v1")
    with pytest.raises(ConfigError):
        conn.with_changes(gateway_id="").run_url("@cf/x/y", "gateway")


def test_settings_from_env_and_secrets():
    env = {"CLOUDFLARE_ACCOUNT_ID": "b" * 32, "CLOUDFLARE_API_TOKEN": CANARY, "CLOUDFLARE_GATEWAY_ID": "gw"}
    conn = connection_from_settings(cloudflare_settings(env=env, secrets=None))
    assert conn is not None and conn.mode == "cloudflare" and conn.gateway_id == "gw"
    secrets = {"cloudflare": {"account_id": "c" * 32, "api_token": "from-secrets"}}
    conn = connection_from_settings(cloudflare_settings(env=env, secrets=secrets))
    assert conn.account_id == "c" * 32 and conn.api_token == "from-secrets" and conn.gateway_id == "gw"
    assert connection_from_settings(cloudflare_settings(env={}, secrets=None)) is None
