"""Sign-in: each person opens the UI with their own API key, and the UI acts with that key only.

The key is checked by the API (``GET /v1/whoami``), which also says whose it is and its scopes: the pages then
offer only what those scopes allow (the API refuses the rest anyway), and every change is recorded in the
registry under that key's name. The key lives in the browser session's server-side state, never in a cookie or
the page; the session ends after ``ui.session_minutes`` without use, or on "Sign out".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from autoinspect.config import Settings
from autoinspect.ui.client import ApiClient, ApiError, Identity

SESSION_KEY = "signed_in"


@dataclass(frozen=True)
class SignedIn:
    token: str
    identity: Identity
    last_used: float
    """``time.monotonic()`` of the last page run; the session ends ``ui.session_minutes`` after it."""


def current(settings: Settings) -> SignedIn | None:
    """The signed-in person, with the session's idle clock restarted; ``None`` (and signed out) once it expired."""
    session: SignedIn | None = st.session_state.get(SESSION_KEY)
    if session is None:
        return None
    if time.monotonic() - session.last_used > settings.ui.session_minutes * 60:
        del st.session_state[SESSION_KEY]
        st.info("Your session expired: sign in again.")
        return None
    refreshed = SignedIn(session.token, session.identity, time.monotonic())
    st.session_state[SESSION_KEY] = refreshed
    return refreshed


def token() -> str | None:
    """The signed-in key, for the pages' API calls."""
    session: SignedIn | None = st.session_state.get(SESSION_KEY)
    return session.token if session else None


def sign_in_form(settings: Settings) -> None:
    """The only thing an anonymous visitor sees."""
    st.header("Sign in")
    st.write("Sign in with your AutoInspect API key (`autoinspect keys create YOUR-NAME --scope inspect`).")
    with st.form("signin"):
        given = st.text_input("API key", type="password", key="signin-key")
        submitted = st.form_submit_button("Sign in", key="signin")
    if not submitted or not given.strip():
        return
    try:
        with ApiClient(settings.ui.api_url, given.strip()) as client:
            identity = client.whoami()
    except ApiError as error:
        st.error("That key was refused." if error.status in (401, 403) else f"Cannot sign in: {error}")
        return
    st.session_state[SESSION_KEY] = SignedIn(given.strip(), identity, time.monotonic())
    st.rerun()


def sign_out() -> None:
    st.session_state.pop(SESSION_KEY, None)
