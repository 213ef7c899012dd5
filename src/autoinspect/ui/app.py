"""The Streamlit script of the operator UI: ``autoinspect ui`` runs it (``streamlit run app.py``).

Streamlit re-runs this file on every interaction, so it only picks the page and calls it; the settings are read
through the cached ``get_settings()`` (``AUTOINSPECT_UI__API_URL`` chooses the API). Nothing but the sign-in form
shows until a person signs in with their own key (:mod:`autoinspect.ui.signin`).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from autoinspect.config import Settings, get_settings
from autoinspect.ui import signin
from autoinspect.ui.common import demo_banner
from autoinspect.ui.views import data, inspect, models, monitoring, review

PAGES: dict[str, Callable[[Settings], None]] = {
    "Inspect": inspect.render,
    "Review queue": review.render,
    "Monitoring": monitoring.render,
    "Models": models.render,
    "Data": data.render,
}


def main() -> None:
    st.set_page_config(page_title="AutoInspect", layout="wide")
    settings = get_settings()
    st.sidebar.title("AutoInspect")
    session = signin.current(settings)
    if session is None:
        signin.sign_in_form(settings)
        return
    page = st.sidebar.radio("Page", list(PAGES), key="page")
    who = session.identity
    st.sidebar.caption(f"Signed in as {who.name} ({', '.join(who.scopes)}); API: {settings.ui.api_url}")
    if st.sidebar.button("Sign out", key="signout"):
        signin.sign_out()
        st.rerun()
    demo_banner(settings)
    PAGES[page](settings)


main()
