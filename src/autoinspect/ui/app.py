"""The Streamlit script of the operator UI: ``autoinspect ui`` runs it (``streamlit run app.py``).

Streamlit re-runs this file on every interaction, so it only picks the page and calls it; the settings are read
through the cached ``get_settings()`` (``AUTOINSPECT_UI__API_URL`` / ``AUTOINSPECT_UI__API_KEY`` choose the API).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from autoinspect.config import Settings, get_settings
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
    page = st.sidebar.radio("Page", list(PAGES), key="page")
    st.sidebar.caption(f"API: {settings.ui.api_url}" + ("" if settings.ui.api_key else " (no key set)"))
    PAGES[page](settings)


main()
