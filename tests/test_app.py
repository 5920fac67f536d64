"""The app shell: navigation, the connection sidebar, local mode by default, validation, token safety."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

CANARY = "canary-token-5e8d2a7c41"


def _all_text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "success", "info", "code", "text", "json", "exception"):
        parts += [str(getattr(el, "value", "")) for el in at.get(kind)]
    return "\n".join(parts)


def test_local_mode_without_credentials(app):
    assert app.sidebar.radio(key="cfg_mode").value == "Local emulator"
    assert "Local emulator" in _all_text(app)
    assert app.sidebar.text_input(key="cfg_local_gateway_id").value == "demo"
    app.sidebar.button(key="cfg_verify").click().run()  # Verify token against the emulator
    assert "Token is active" in [s.value for s in app.sidebar.success][0]


def test_cloudflare_mode_validation_names_the_field(app):
    app.sidebar.radio(key="cfg_mode").set_value("Cloudflare").run()
    app.sidebar.text_input(key="cfg_account_id").input("not-an-id").run()
    app.sidebar.text_input(key="cfg_gateway_id").input("Bad--Gateway").run()
    errors = [e.value for e in app.sidebar.error]
    assert any("Account ID must be 32 lowercase hexadecimal" in e for e in errors)
    assert any("API token is required" in e for e in errors)
    assert any("Gateway ID must be 1-64" in e for e in errors)
    assert app.sidebar.button(key="cfg_verify").disabled


def test_credentials_from_env_select_cloudflare_mode_and_stay_hidden(app_env, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "a" * 32)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CANARY)
    # Point "Cloudflare" at the local emulator so Verify really runs, without leaving loopback.
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", f"{app_env.base_url}/client/v4")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert at.sidebar.radio(key="cfg_mode").value == "Cloudflare"
    assert "Cloudflare" in _all_text(at)
    token_input = at.sidebar.text_input(key="cfg_api_token")
    assert token_input.proto.type == token_input.proto.PASSWORD
    assert token_input.value == ""  # the server's token is used, never sent to the browser
    assert "CLOUDFLARE_API_TOKEN" in token_input.proto.placeholder
    at.sidebar.button(key="cfg_verify").click().run()
    assert at.sidebar.success and not at.exception
    assert CANARY not in _all_text(at)


def test_every_page_renders(app):
    for page in ("pages/playground.py", "pages/classify.py", "pages/compare.py", "pages/history.py"):
        app.switch_page(page).run()
        assert not app.exception, (page, app.exception)


def test_a_malformed_setting_turns_sending_off_on_every_page(app):
    app.sidebar.radio(key="cfg_mode").set_value("Cloudflare").run()
    app.sidebar.text_input(key="cfg_account_id").input("not-an-id").run()
    app.sidebar.text_input(key="cfg_api_token").input("some-token").run()
    app.switch_page("pages/playground.py").run()
    assert any("Fix the connection in the sidebar" in e.value for e in app.error)
    assert app.chat_input(key="pg_input").proto.disabled
    app.switch_page("pages/classify.py").run()
    assert any("Account ID must be 32" in e.value for e in app.error)
    assert app.button(key="classify_one").disabled and app.button(key="classify_run").disabled
    app.switch_page("pages/compare.py").run()
    assert app.button(key="cmp_run").disabled
    assert not app.exception
