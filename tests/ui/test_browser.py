"""The UI in a real browser: ``autoinspect ui`` in its own process against the running API, driven by headless
Chromium through Playwright; screenshots of the Inspect page (after an upload) and the Models page are kept.

Needs Playwright (``pip install playwright``, in the dev extra) and a Chromium binary (Debian: ``apt-get install
chromium``; Playwright's own browser download is not used). Missing either fails under CI and skips elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from served import KeyFactory, jpeg, wait_until_answering
from unavailable import unavailable

from autoinspect.config import Settings
from autoinspect.registry.aliases import CHAMPION, alias_history
from autoinspect.registry.mlflow_registry import get_by_alias
from autoinspect.store import Scope

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "/usr/lib/chromium/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Offline-safe: without the background-networking flags Chromium keeps dialling hosts this machine cannot reach."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def chromium() -> str:
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    unavailable("no Chromium binary (apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.fixture
def ui_url(ui_env: KeyFactory, free_port: int) -> Iterator[str]:
    """``autoinspect ui`` on a free loopback port, with the AUTOINSPECT_* variables of ``ui_env`` (no key)."""
    port = free_port
    process = subprocess.Popen(
        [sys.executable, "-m", "autoinspect", "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(
        f"{url}/_stcore/health",
        process,
        what="the UI",
        exited=lambda: f"autoinspect ui exited with {process.returncode}",
    )
    yield url
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _png(path: Path) -> bytes:
    content = path.read_bytes()
    assert content.startswith(PNG_MAGIC) and len(content) > 10_000, f"{path}: {len(content)} bytes"
    return content


def _sign_in(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_then_inspect_and_models_pages_in_chromium(
    chromium: str, ui_url: str, ui_env: KeyFactory, registry: Settings, tmp_path: Path
) -> None:
    """Anonymous: the sign-in form only. An inspect user inspects and sees no admin control. An admin promotes,
    and the registry records that person."""
    from playwright.sync_api import expect, sync_playwright

    inspector, admin = ui_env(Scope.INSPECT), ui_env(Scope.INSPECT, Scope.ADMIN)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(ui_url)
            expect(page.get_by_label("API key")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Upload one or more photos")).to_have_count(0)
            expect(page.get_by_text("Models", exact=True)).to_have_count(0)
            page.screenshot(path=tmp_path / "signin.png", full_page=True)

            _sign_in(page, inspector)
            expect(page.get_by_text("Upload one or more photos")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("20MB per file", exact=False)).to_be_visible()  # what the API takes
            expect(page.get_by_role("button", name="Deploy")).to_have_count(0)  # no developer toolbar
            page.locator("input[type=file]").set_input_files(
                [{"name": "car.jpg", "mimeType": "image/jpeg", "buffer": jpeg(red=True)}]
            )
            expect(page.get_by_text("dent, scratch")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Needs review", exact=False)).to_be_visible()
            expect(page.locator("img[src*='media']").first).to_be_visible()
            page.screenshot(path=tmp_path / "inspect.png", full_page=True)
            page.get_by_text("Models", exact=True).click()
            expect(page.get_by_text("Registered versions")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("needs a key with the admin scope")).to_be_visible(timeout=30_000)
            expect(page.get_by_role("button", name="Promote to champion")).to_have_count(0)
            page.get_by_role("button", name="Sign out").click()

            _sign_in(page, admin)
            page.get_by_text("Models", exact=True).click()
            expect(page.get_by_role("button", name="Promote to champion")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("car.jpg", exact=True)).to_have_count(0, timeout=30_000)  # the old page is gone
            assert page.locator("[data-testid=stSidebarNav]").count() == 0  # no stray multipage navigation
            page.screenshot(path=tmp_path / "models.png", full_page=True)
            page.get_by_role("button", name="Promote to champion").click()
            expect(page.get_by_text("v2 promoted to champion")).to_be_visible(timeout=30_000)
        finally:
            browser.close()
    champion = get_by_alias(registry, CHAMPION)
    assert champion is not None and champion.version == 2
    assert alias_history(registry)[-1].actor == "tester"
    for name in ("signin", "inspect", "models"):
        _png(tmp_path / f"{name}.png")


def test_api_docs_render_offline_in_chromium(chromium: str, server: str) -> None:
    """Swagger UI and ReDoc draw the API's operations with no script or stylesheet fetched from outside (this
    machine has no route to a CDN, so a page that needed one would stay blank)."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            outside: list[str] = []
            page.on(
                "request",
                lambda request: (
                    outside.append(request.url)
                    if request.url.startswith("http") and not request.url.startswith(server)
                    else None
                ),
            )
            page.goto(f"{server}/docs")
            expect(page.get_by_text("/v1/inspect/batch").first).to_be_visible(timeout=30_000)
            page.goto(f"{server}/redoc")
            expect(page.get_by_role("heading", name="Inspect one photo").first).to_be_visible(timeout=30_000)
            # ReDoc's "API docs by Redocly" badge image points at its CDN: cosmetic, the page renders without it
            assert [url for url in outside if not url.endswith("/redoc/logo-mini.svg")] == [], outside
        finally:
            browser.close()
