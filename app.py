"""Workers AI Lab: a playground and latency lab for Cloudflare Workers AI and AI Gateway.

`streamlit run app.py`. With no Cloudflare credentials it starts the local emulator and uses it.
"""

from pathlib import Path

import streamlit as st

from components.connection import connection_sidebar

# A local file: a Material-icon favicon would be fetched from the internet, which may not be there.
ICON = Path(__file__).parent / "assets" / "icon.png"
st.set_page_config(page_title="Workers AI Lab", page_icon=str(ICON), layout="wide")

# st.navigation owns routing: every page, even one opened by its URL, runs inside this script, so the
# connection sidebar is always there. (tests/conftest.py explains the one AppTest workaround pages/ needs.)
PAGES = [
    st.Page("pages/playground.py", title="Playground", icon=":material/chat:", url_path="playground", default=True),
    st.Page("pages/classify.py", title="Classify", icon=":material/label:", url_path="classify"),
    st.Page("pages/compare.py", title="Compare routes", icon=":material/speed:", url_path="compare"),
    st.Page("pages/history.py", title="History", icon=":material/history:", url_path="history"),
]

navigation = st.navigation(PAGES)
connection_sidebar()
navigation.run()
