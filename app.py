"""Workers AI Lab: a playground and latency lab for Cloudflare Workers AI and AI Gateway.

`streamlit run app.py`. With no Cloudflare credentials it starts the local emulator and uses it.
"""

from pathlib import Path

import streamlit as st

from components.connection import connection_sidebar, local_mode_notice

# A local file: a Material-icon favicon would be fetched from the internet, which may not be there.
ICON = Path(__file__).parent / "assets" / "icon.png"
st.set_page_config(page_title="Workers AI Lab", page_icon=str(ICON), layout="wide")

# st.navigation owns routing: every page, even one opened by its URL, runs inside this script, so the
# connection sidebar is always there. (tests/conftest.py explains the one AppTest workaround pages/ needs.)
# The default page is served at "/" and Streamlit gives it no URL of its own, so `/playground` would be
# "Page not found": a hidden alias under that URL switches to it (keeping the query string).
PLAYGROUND = st.Page("pages/playground.py", title="Playground", icon=":material/chat:", url_path="home",
                     default=True)


def _playground_alias() -> None:
    st.switch_page(PLAYGROUND, query_params=st.query_params.to_dict())


PAGES = [
    PLAYGROUND,
    st.Page("pages/classify.py", title="Classify", icon=":material/label:", url_path="classify"),
    st.Page("pages/compare.py", title="Compare routes", icon=":material/speed:", url_path="compare"),
    st.Page("pages/history.py", title="History", icon=":material/history:", url_path="history"),
    st.Page(_playground_alias, title="Playground", url_path="playground", visibility="hidden"),
]

navigation = st.navigation(PAGES)
connection_sidebar()
local_mode_notice(navigation.url_path)  # first load: where answers come from
navigation.run()
