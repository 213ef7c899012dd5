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
from served import KeyFactory, inspect_red, jpeg, wait_for_log, wait_until_answering
from unavailable import unavailable

from autoinspect.config import Settings
from autoinspect.registry.aliases import CHAMPION, alias_history
from autoinspect.registry.mlflow_registry import get_by_alias
from autoinspect.store import ReviewLog, Scope, make_engine

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


def test_review_boxes_are_drawn_moved_resized_and_deleted_on_the_photo_in_chromium(
    chromium: str, ui_url: str, ui_env: KeyFactory, server: str, registry: Settings, tmp_path: Path
) -> None:
    """A reviewer corrects a flagged answer with the mouse alone: the model's two boxes (scratch and dent on the
    red patch, 0.2-0.6 of the photo) are on the photo, a new dent is drawn, moved and resized, the model's dent is
    deleted, and the stored review holds exactly what was drawn."""
    from playwright.sync_api import expect, sync_playwright

    key = ui_env(Scope.INSPECT, Scope.REVIEW)
    request_id = inspect_red(server, key)
    wait_for_log(registry, 1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(ui_url)
            _sign_in(page, key)
            page.locator("[data-testid=stSidebar]").get_by_text("Review queue", exact=True).click()
            editor = page.locator(".box-editor")
            boxes = editor.locator("rect.box")
            expect(boxes).to_have_count(2, timeout=30_000)
            expect(editor.locator("img")).to_have_js_property("complete", True)
            frame = editor.locator("svg").bounding_box()
            assert frame is not None and frame["width"] > 200, frame

            def at(x: float, y: float) -> tuple[float, float]:
                return frame["x"] + x * frame["width"], frame["y"] + y * frame["height"]

            def drag(start: tuple[float, float], end: tuple[float, float], halt_ms: int = 0) -> None:
                """Press at ``start``, move to ``end`` in 8 steps (holding still ``halt_ms`` halfway), release."""
                (x0, y0), (x1, y1) = at(*start), at(*end)
                page.mouse.move(x0, y0)
                page.mouse.down()
                page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
                page.wait_for_timeout(halt_ms)
                page.mouse.move(x1, y1, steps=4)
                page.mouse.up()

            editor.get_by_label("Class of the box").select_option("dent")
            drag((0.70, 0.70), (0.90, 0.90))  # draw a new dent
            expect(boxes).to_have_count(3)
            drag((0.80, 0.80), (0.75, 0.80))  # move it left: 0.65-0.85 x 0.70-0.90
            # its bottom-right corner out: 0.65-0.95 x 0.70-0.95, holding still long enough halfway for the page's
            # rerun after the move to land mid-drag (it must not drop the rest of the drag)
            drag((0.85, 0.90), (0.95, 0.95), halt_ms=3000)
            page.mouse.click(*at(0.3, 0.3))  # the model's dent, drawn over its scratch
            expect(editor.locator("rect.box.selected")).to_have_attribute("data-label", "dent")
            editor.get_by_role("button", name="Delete box").click()
            expect(boxes).to_have_count(2)
            page.screenshot(path=tmp_path / "review.png", full_page=True)
            page.get_by_role("button", name="Submit correction").click()
            expect(page.get_by_text(f"{request_id} corrected: 2 region(s)")).to_be_visible(timeout=30_000)
        finally:
            browser.close()
    engine = make_engine(registry.store_url)
    try:
        review = ReviewLog(engine).get(request_id)
    finally:
        engine.dispose()
    assert review is not None and review.reviewer == "tester"
    stored = sorted((label.label, label.box) for label in review.labels)
    assert [name for name, _ in stored] == ["dent", "scratch"], stored
    drawn, kept = stored[0][1], stored[1][1]
    expected = {"x1": 0.65, "y1": 0.70, "x2": 0.95, "y2": 0.95}
    assert all(abs(getattr(drawn, name) - value) < 0.02 for name, value in expected.items()), drawn
    assert all(abs(getattr(kept, name) - value) < 0.02 for name, value in {"x1": 0.2, "y1": 0.2}.items()), kept
    _png(tmp_path / "review.png")


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
