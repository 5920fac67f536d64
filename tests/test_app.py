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
    app.sidebar.button(key="cfg_verify").click().run()  # checks the emulator; there is no token to verify
    (success,) = [s.value for s in app.sidebar.success]
    assert "Token is active" not in success
    assert "local emulator" in success and "no Cloudflare token" in success


def test_first_load_says_answers_come_from_the_emulator_until_dismissed(app):
    notice = [m.value for m in app.main.markdown if "Answers come from the local emulator" in m.value]
    assert notice and "Cloudflare" in notice[0] and "CLOUDFLARE_API_TOKEN" in notice[0]
    app.button(key="cfg_local_notice_dismiss").click().run()
    assert not any("Answers come from the local emulator" in m.value for m in app.main.markdown)


def test_the_first_load_notice_stays_behind_when_another_page_opens(app):
    app.switch_page("pages/compare.py").run()
    app.switch_page("pages/playground.py").run()
    assert not any("Answers come from the local emulator" in m.value for m in app.main.markdown)


def test_switching_to_cloudflare_asks_calmly_for_what_is_needed(app):
    app.sidebar.radio(key="cfg_mode").set_value("Cloudflare").run()
    assert not app.exception
    assert [e.value for e in app.error] == [], "no red error before anything is typed"
    asked = [i.value for i in app.sidebar.info]
    assert any("account ID" in i and "API token" in i for i in asked), asked
    assert any("To use Cloudflare" in i.value for i in app.main.info), "the page says why sending is off"
    assert app.chat_input(key="pg_input").proto.disabled and app.sidebar.button(key="cfg_verify").disabled
    assert not any("Answers come from the local emulator" in m.value for m in app.main.markdown)


def test_cloudflare_mode_validation_names_the_field(app):
    app.sidebar.radio(key="cfg_mode").set_value("Cloudflare").run()
    app.sidebar.text_input(key="cfg_account_id").input("not-an-id").run()
    app.sidebar.text_input(key="cfg_gateway_id").input("Bad--Gateway").run()
    errors = [e.value for e in app.sidebar.error]
    assert any("Account ID must be 32 lowercase hexadecimal" in e for e in errors)
    assert any("Gateway ID must be 1-64" in e for e in errors)
    assert any("API token" in i.value for i in app.sidebar.info), "the missing token is asked for, not an error"
    assert app.sidebar.button(key="cfg_verify").disabled


def test_the_playground_deep_link_opens_the_playground(app):
    """`/playground` names a page of its own (a hidden alias that switches to the default page)."""
    from streamlit.util import calc_hash

    pages = {info["url_pathname"]: info for info in app._registered_pages.values()}  # AppTest's own record
    assert "playground" in pages, pages.keys()
    app._page_hash = calc_hash("playground")  # what a browser opening /playground asks for
    app.run()
    assert not app.exception, app.exception
    assert any(t.value == "Playground" for t in app.title)
    assert app.chat_input(key="pg_input") is not None


def test_the_request_deadline_is_set_for_the_session(app):
    field = app.sidebar.number_input(key="cfg_deadline_s")
    assert field.value == 120.0 and "deadline" in field.label.lower()
    field.set_value(7.0).run()
    app.switch_page("pages/compare.py").run()
    app.switch_page("pages/playground.py").run()
    assert app.sidebar.number_input(key="cfg_deadline_s").value == 7.0
    conn, _client = app.session_state["_cfai_client"]
    assert conn.deadline_s == 7.0


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
    assert "Token is active (the server's token" in at.sidebar.success[0].value
    assert "Account-owned API token, active" in at.sidebar.success[0].value  # which kind of token it is
    assert CANARY not in _all_text(at)


def _remote_browser(monkeypatch, address: str) -> None:
    """Streamlit's view of the browser's connection, as a browser on another machine would give it."""
    import streamlit.runtime.context as context

    class RemoteClient:
        remote_ip = address

    monkeypatch.setattr(context, "_get_client_context", lambda: RemoteClient())


def test_a_remote_browser_does_not_get_the_server_token(app_env, monkeypatch):
    """Issue 10.2, should the app be reachable from the network: a browser that is not on the server's
    machine cannot use the token the server holds, unless the operator allowed it explicitly."""
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "a" * 32)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CANARY)
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", f"{app_env.base_url}/client/v4")
    _remote_browser(monkeypatch, "192.0.2.7")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert any("only used by browsers on the server's own machine" in w.value for w in at.sidebar.warning)
    assert at.sidebar.button(key="cfg_verify").disabled and at.chat_input(key="pg_input").proto.disabled
    monkeypatch.setenv("CFAI_ALLOW_REMOTE_SERVER_TOKEN", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.sidebar.warning and not at.sidebar.button(key="cfg_verify").disabled
    at.sidebar.button(key="cfg_verify").click().run()
    assert "Token is active" in at.sidebar.success[0].value


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
    assert app.button(key="classify_one").disabled
    app.session_state["classify_tab"] = "Batch"  # the page draws only its open tab
    app.run()
    assert app.button(key="classify_run").disabled
    app.switch_page("pages/compare.py").run()
    assert app.button(key="cmp_run").disabled
    assert not app.exception
