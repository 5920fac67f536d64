"""AppTest script: the token-timing section of the records in session state (`records`)."""

import streamlit as st

from components.token_timing_view import token_timing_section

token_timing_section(st.session_state["records"])
