"""Connection settings: validation that names the field, token masking, sources of credentials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfai.config import (
    CLOUDFLARE_API_BASE,
    ENV_ALLOW_REMOTE_SERVER_TOKEN,
    WITHHELD_BASE_CHANGED,
    WITHHELD_REMOTE_CLIENT,
    ConfigError,
    Connection,
    base_url_identity,
    check_model_id,
    cloudflare_settings,
    connection_from_settings,
    local_connection,
    same_base_url,
    scope_server_tokens,
    server_tokens_allowed_for,
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


# --- where a server-held token may go (issue 10.1) ----------------------------------------------------------
SERVER = {"api_token": CANARY, "gateway_token": CANARY + "-gw", "api_base_url": "", "gateway_base_url": ""}


def scoped(session: dict, server: dict | None = None, **kwargs):
    return scope_server_tokens(SERVER if server is None else server, session, **kwargs)


def test_the_server_tokens_are_used_at_the_server_bases():
    for session in ({}, {"api_base_url": CLOUDFLARE_API_BASE + "/", "gateway_base_url": "HTTPS://Gateway.AI.Cloudflare.com:443/v1"}):
        result = scoped({"account_id": "a" * 32, **session})
        assert result.settings["api_token"] == CANARY and result.settings["gateway_token"] == CANARY + "-gw"
        assert result.withheld == {}


@pytest.mark.parametrize("changed, withheld", [
    ({"api_base_url": "http://127.0.0.1:9/client/v4"}, {"api_token"}),
    # The API token travels with gateway calls too (the gateway forwards it to Workers AI).
    ({"gateway_base_url": "http://127.0.0.1:9/v1"}, {"api_token", "gateway_token"}),
    ({"api_base_url": "https://api.cloudflare.com/client/v4@evil.example"}, {"api_token"}),
    ({"api_base_url": "https://api.cloudflare.com.evil.example/client/v4"}, {"api_token"}),
    ({"api_base_url": "http://api.cloudflare.com/client/v4"}, {"api_token"}),  # scheme matters
    ({"api_base_url": "https://api.cloudflare.com:8443/client/v4"}, {"api_token"}),
    ({"api_base_url": "https://user:pw@api.cloudflare.com/client/v4"}, {"api_token"}),
    ({"api_base_url": "https://api.cloudflare.com/client/v4?x=1"}, {"api_token"}),
    ({"api_base_url": "https://api.cloudflare.com/other"}, {"api_token"}),
    ({"api_base_url": "not a url"}, {"api_token"}),
])
def test_a_changed_base_url_never_gets_the_server_token(changed, withheld):
    result = scoped(changed)
    assert set(result.withheld) == withheld
    assert all(reason == WITHHELD_BASE_CHANGED for reason in result.withheld.values())
    for name in withheld:
        assert result.settings[name] == "", name
    if "gateway_token" in withheld:
        assert CANARY not in str(result.settings)


def test_a_typed_token_goes_wherever_the_session_points():
    result = scoped({"api_base_url": "http://127.0.0.1:9/client/v4", "gateway_base_url": "http://127.0.0.1:9/v1",
                     "api_token": "mine", "gateway_token": "mine-gw"})
    assert result.settings["api_token"] == "mine" and result.settings["gateway_token"] == "mine-gw"
    assert result.withheld == {}


def test_the_server_bases_can_be_configured():
    server = {**SERVER, "api_base_url": "http://127.0.0.1:8787/client/v4", "gateway_base_url": "http://127.0.0.1:8787/v1"}
    assert scoped({"api_base_url": "http://127.0.0.1:8787/client/v4/"}, server).settings["api_token"] == CANARY
    assert scoped({"api_base_url": CLOUDFLARE_API_BASE}, server).withheld == {"api_token": WITHHELD_BASE_CHANGED}


def test_remote_browsers_do_not_get_the_server_tokens_unless_the_operator_allows_it():
    for address in (None, "127.0.0.1", "127.5.0.1", "::1", "::ffff:127.0.0.1"):
        assert server_tokens_allowed_for(address, env={}), address
    for address in ("192.0.2.7", "10.0.0.2", "fd00::2", "localhost.evil", ""):
        assert not server_tokens_allowed_for(address, env={}), address
        assert server_tokens_allowed_for(address, env={ENV_ALLOW_REMOTE_SERVER_TOKEN: "1"})
    result = scoped({}, server_tokens_allowed=False)
    assert result.settings["api_token"] == "" and result.settings["gateway_token"] == ""
    assert set(result.withheld.values()) == {WITHHELD_REMOTE_CLIENT}
    assert scoped({"api_token": "mine"}, server_tokens_allowed=False).settings["api_token"] == "mine"


def test_base_url_identity():
    assert same_base_url("https://API.cloudflare.com/client/v4/", "https://api.cloudflare.com:443/client/v4")
    assert not same_base_url("", "")
    assert not same_base_url("ftp://x/y", "ftp://x/y")
    assert base_url_identity("http://127.0.0.1:99999/") is None


def test_missing_settings_are_told_apart_from_malformed_ones():
    problems = Connection(mode="cloudflare", account_id="", api_token="").validate()
    assert {p.field for p in problems} == {"account_id", "api_token"} and all(p.missing for p in problems)
    problems = Connection(mode="cloudflare", account_id="nope", api_token="t").validate()
    assert [p.field for p in problems] == ["account_id"] and not problems[0].missing


def test_deadline_is_a_connection_setting():
    conn = local_connection("http://127.0.0.1:1")
    assert conn.deadline_s == 120.0 and conn.with_changes(deadline_s=5).deadline_s == 5
