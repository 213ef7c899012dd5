"""What every page shares: the API client built from the settings, and API errors turned into advice.

A page never shows a traceback for the API being down or a key lacking a scope: those are states of the
installation the operator can fix, so the message says how.
"""

from __future__ import annotations

import streamlit as st

from autoinspect.config import Settings
from autoinspect.ui import signin
from autoinspect.ui.client import UNREACHABLE, ApiClient, ApiError


def api_client(settings: Settings) -> ApiClient:
    """A client on ``ui.api_url`` with the signed-in person's key (one per script run; pages close it)."""
    return ApiClient(settings.ui.api_url, signin.token())


def show_api_error(error: ApiError, settings: Settings) -> None:
    """The API's own sentence, with what to do about the usual causes."""
    if error.status == UNREACHABLE:
        st.error(
            f"The API at {settings.ui.api_url} cannot be reached. Start it with `autoinspect serve`, "
            "or point the UI at it with AUTOINSPECT_UI__API_URL."
        )
    elif error.status == 401:
        st.error(f"The API refused your key: {error.detail}. Sign out and sign in with a valid key.")
    elif error.status == 403:
        st.warning(f"This key may not do that: {error.detail}")
    elif error.status == 503:
        st.warning(f"The API has no model loaded yet: {error.detail}")
    else:
        st.error(f"The API answered {error.status}: {error.detail}")


DEMO_BANNER = (
    "The model serving now is a **demo**: trained on synthetic panels, it will not find damage on real photos. "
    'Train one on your annotated photos: `make up ARGS="--data path/to/your/dataset"`.'
)


def demo_banner(settings: Settings) -> None:
    """Warn on every page while the champion is a demo model (nothing when the API cannot say)."""
    try:
        with api_client(settings) as client:
            models = client.models()
    except ApiError:
        return  # the page itself explains an API that is down or a key that is refused
    if any("champion" in model.aliases and model.demo for model in models):
        st.warning(DEMO_BANNER)


def share(value: float | None) -> str:
    """A rate as a percentage, ``n/a`` when it was not measured."""
    return "n/a" if value is None else f"{value:.1%}"
