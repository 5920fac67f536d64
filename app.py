"""Workers AI Lab: a playground and latency lab for Cloudflare Workers AI and AI Gateway.

`streamlit run app.py`. With no Cloudflare credentials it starts the local emulator and uses it.
"""

from pathlib import Path

import streamlit as st

from components.connection import connection_sidebar

# A local file: a Material-icon favicon would be fetched from the internet, which may not be there.
ICON = Path(__file__).parent / "assets" / "icon.png"
st.set_page_config(page_title="Workers AI Lab", page_icon=str(ICON), layout="wide")

# Pages live in views/, not pages/: Streamlit treats a pages/ folder beside the entry point as its legacy
# multipage layout, and then (under AppTest, and on a first visit to a page URL) runs a page without app.py.
PAGES = [
    st.Page("views/playground.py", title="Playground", icon=":material/chat:", url_path="playground", default=True),
    st.Page("views/classify.py", title="Classify", icon=":material/label:", url_path="classify"),
    st.Page("views/compare.py", title="Compare routes", icon=":material/speed:", url_path="compare"),
    st.Page("views/history.py", title="History", icon=":material/history:", url_path="history"),
]

navigation = st.navigation(PAGES)
connection_sidebar()
navigation.run()
