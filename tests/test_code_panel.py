"""The playground's "View as code" panel in AppTest (local mode, the session emulator): the model's response
shape comes from the catalogue, local snippets say where they point, and a missing gateway id is a message."""

from __future__ import annotations

import pytest

PAGE = "pages/playground.py"


@pytest.fixture
def page(app):
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def codes(at) -> list[str]:
    return [c.value for c in at.code]


def test_gpt_oss_gets_the_responses_api_from_the_catalogue_shape(page):
    page.selectbox(key="pg_model").set_value("@cf/openai/gpt-oss-120b").run()
    page.radio(key="pg_route").set_value("direct").run()
    assert not page.exception, page.exception
    [openai] = [c for c in codes(page) if "from openai import OpenAI" in c]
    assert "client.responses.create(" in openai and "messages=" not in openai and "input=" in openai
    [worker] = [c for c in codes(page) if "env.AI.run(" in c]
    assert '"@cf/openai/gpt-oss-120b"' in worker
    page.selectbox(key="pg_model").set_value("@cf/zai-org/glm-4.7-flash").run()
    [openai] = [c for c in codes(page) if "from openai import OpenAI" in c]
    assert "client.chat.completions.create(" in openai


def test_local_gateway_snippets_point_at_the_emulator_and_the_worker_at_a_placeholder(page):
    page.radio(key="pg_route").set_value("gateway").run()
    assert not page.exception, page.exception
    snippets = codes(page)
    rest = [c for c in snippets if "env.AI.run(" not in c]
    assert len(rest) == 3 and all(c.startswith("# Local emulator: this URL is this app's stand-in") for c in rest)
    assert all("cf-aig-authorization" in c for c in rest), "gateways are authenticated by default"
    [worker] = [c for c in snippets if "env.AI.run(" in c]
    assert 'id: "YOUR_GATEWAY_ID"' in worker and '"demo"' not in worker
    assert any("point at the local emulator" in c.value for c in page.caption)


def _panel_without_gateway_id() -> None:
    """The panel on its own: Cloudflare mode, no gateway id, the unified route, shape given."""
    from cfai.config import Connection
    from components.code_panel import code_panel

    conn = Connection(mode="cloudflare", account_id="0123456789abcdef0123456789abcdef", api_token="t")
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    for route in ("unified", "direct"):
        code_panel(conn, route, "@cf/openai/gpt-oss-120b", body, shape="responses")


def test_a_route_without_its_gateway_id_is_a_message_not_a_crash():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_without_gateway_id, default_timeout=30).run()
    assert not at.exception, at.exception
    assert any("No code to show yet" in i.value and "Gateway ID" in i.value for i in at.info)
    assert len(at.code) == 4 and any("client.responses.create(" in c.value for c in at.code), "direct still shows"
