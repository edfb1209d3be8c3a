"""The viewer page in headless Chromium: it renders the mesh and the view follows pointer and tilt.

Needs Debian's chromium at /usr/bin/chromium (the README's test command installs it) and the
``playwright`` package (driver only: it launches that system browser, it downloads none).
WebGL runs on SwiftShader (software), so no GPU is needed.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from ldi_synthetic import square_ldi

from sensing.novel_view.mesh import mesh_from_layers, write_glb
from sensing.novel_view.viewer import write_viewer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # software WebGL (SwiftShader through ANGLE), explicitly: newer Chromium refuses the silent fallback
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
VIEWPORT = {"width": 480, "height": 360}
BACKGROUND_BGR = (20, 20, 20)  # the page's clear colour, 0.08 * 255

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _screenshot(page) -> np.ndarray:
    page.wait_for_function("window.glassdepthViewer.idle", timeout=10_000)
    return cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)


def test_viewer_renders_and_follows_pointer_and_tilt(browser, tmp_path):
    scene = square_ldi(144, 192, far_disparity=8.0, near_disparity=32.0)
    glb = write_glb(mesh_from_layers(scene.ldi), tmp_path / "photo.glb")
    page_path = write_viewer(glb, tmp_path / "index.html")

    page = browser.new_page(viewport=VIEWPORT)
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "request",
        lambda request: (
            problems.append(request.url) if not request.url.startswith(("file:", "data:", "blob:")) else None
        ),
    )
    page.goto(page_path.as_uri())
    page.wait_for_function(
        "window.glassdepthViewer && (window.glassdepthViewer.ready || window.glassdepthViewer.error)", timeout=20_000
    )
    state = page.evaluate("window.glassdepthViewer")
    assert state["error"] is None and state["primitives"] == 2

    still = _screenshot(page)
    assert still.shape[:2] == (VIEWPORT["height"], VIEWPORT["width"])
    background = np.all(np.abs(still.astype(int) - BACKGROUND_BGR) <= 3, axis=2)
    assert background.mean() < 0.05, "the canvas is mostly blank"
    assert still.std() > 20, "the canvas shows no texture"

    page.mouse.move(VIEWPORT["width"] - 5, 5)
    moved = _screenshot(page)
    changed = np.abs(moved.astype(int) - still).max(axis=2) > 40
    assert changed.mean() > 0.2, f"moving the pointer changed only {changed.mean():.1%} of the pixels"

    page.mouse.move(VIEWPORT["width"] // 2, VIEWPORT["height"] // 2)
    centred = _screenshot(page)
    assert np.abs(centred.astype(int) - still).mean() < 3, "the centred pointer should give the reference view back"

    # a phone: the first reading is the rest pose, tilting from it moves the camera
    for gamma in (0.0, 15.0):
        page.evaluate(
            f"window.dispatchEvent(new DeviceOrientationEvent('deviceorientation', {{alpha: 0, beta: 40, gamma: {gamma}}}))"
        )
    tilted = _screenshot(page)
    assert (np.abs(tilted.astype(int) - centred).max(axis=2) > 40).mean() > 0.2
    assert not problems, problems
    page.close()
