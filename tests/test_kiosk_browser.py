"""End to end in a real headless Chromium: the kiosk page streams the (fake) microphone to the server,
frames come back and the mouth moves — measured on the received pixels and on the landmark
mouth-opening sent with each frame — and a screenshot is saved (``TOONSYNC_UPDATE_DOCS=1`` also
writes ``docs/kiosk.png``). A drawing is uploaded, one of its point handles dragged with the mouse, and the
adjusted drawing becomes the avatar. The avatar editor changes the hairstyle and glasses of the streaming avatar,
its preview follows, and the edited avatar replaces it in the live stream (``docs/kiosk_edit.png``).

Needs Debian's ``chromium`` + ``chromium-driver`` (``apt-get install chromium chromium-driver``) and
``pip install selenium``; skipped with the reason otherwise. Chromium is never downloaded: Selenium gets
the system binary and driver paths, so Selenium Manager is not used. The server listens on 127.0.0.1
only; Chromium's background networking is off.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("TOONSYNC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = os.environ.get("TOONSYNC_CHROMEDRIVER") or shutil.which("chromedriver")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip(
        "the browser test needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver); not installed",
        allow_module_level=True,
    )
pytest.importorskip("selenium", reason="the browser test needs `pip install selenium`")
pytest.importorskip("starlette", reason="the kiosk server needs `pip install starlette uvicorn websockets`")
pytest.importorskip("uvicorn", reason="the kiosk server needs `pip install starlette uvicorn websockets`")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from toonsync.runtime.server import BackgroundServer, ServerConfig, create_app  # noqa: E402

DOCS_PNG = Path(__file__).resolve().parent.parent / "docs" / "kiosk.png"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with BackgroundServer(create_app(ServerConfig(max_streams=4))) as srv:
        yield srv


@pytest.fixture
def browser(tmp_path, speech_wav):
    fake_mic = tmp_path / "speech.wav"  # Chromium loops this file as the microphone
    shutil.copy(speech_wav, fake_mic)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_mic}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1040,860",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-dev-shm-usage",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


def kiosk(drv) -> dict:
    return drv.execute_script("return window.kiosk")


def wait_until(drv, pred, budget_s: float, what: str) -> dict:
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        k = kiosk(drv)
        if pred(k):
            return k
        time.sleep(0.25)
    k = kiosk(drv)
    raise AssertionError(
        f"{what} not reached within {budget_s} s; page state: status={k['status']!r} "
        f"drawn={k['framesDrawn']} errors={k['errors'][-3:]} console={drv.get_log('browser')[-5:]}"
    )


def severe_console_errors(drv) -> list[dict]:
    return [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def test_microphone_drives_the_avatar(server, browser, tmp_path):
    drv = browser
    drv.get(server.url + "/")
    assert drv.title == "toonsync kiosk"
    drv.find_element(By.ID, "mic").click()
    k = wait_until(drv, lambda k: k["framesDrawn"] >= 60, 60, "60 frames drawn from the fake microphone")
    assert k["mode"] == "mic" and k["status"].startswith("live")
    Select(drv.find_element(By.ID, "emotion")).select_by_value("happy")  # live emotion override
    n = k["framesDrawn"]
    k = wait_until(drv, lambda k: k["framesDrawn"] >= n + 50, 60, "50 more frames after the emotion change")
    assert not k["errors"], k["errors"]

    # the mouth moves: landmark mouth-opening sent with the frames, and the received pixels agree
    gaps, dark = np.array(k["lipGaps"]), np.array(k["mouthSignal"])
    assert gaps.size == dark.size >= 100
    assert gaps.std() > 0.02 and gaps.max() > 0.1
    assert dark.std() > 0.003
    assert np.corrcoef(gaps, dark)[0, 1] > 0.5  # the dark mouth interior grows when the lips part
    assert len(k["e2eMs"]) > 0 and k["framesReceived"] >= k["framesDrawn"]

    # a screenshot for the docs, taken while the mouth is open
    wait_until(drv, lambda k: k["lipGaps"] and k["lipGaps"][-1] > 0.12, 20, "an open mouth")
    shot = tmp_path / "kiosk.png"
    drv.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("TOONSYNC_UPDATE_DOCS") == "1":
        from toonsync.runtime.atomic import atomic_path

        with atomic_path(DOCS_PNG) as tmp:
            tmp.write_bytes(shot.read_bytes())

    drv.find_element(By.ID, "stop").click()
    wait_until(drv, lambda k: k["mode"] is None and k["status"] == "stopped", 20, "stopped")
    assert not severe_console_errors(drv)


def test_uploaded_photo_and_wav_mode(server, browser, data_dir):
    drv = browser
    drv.get(server.url + "/")
    drv.find_element(By.ID, "photo").send_keys(str(data_dir / "grace_hopper.jpg"))
    k = wait_until(drv, lambda k: k["avatar"] != "default", 60, "avatar made from the uploaded photo")
    assert k["status"].startswith("avatar ready")
    drv.find_element(By.ID, "wav").send_keys(str(data_dir / "speech_short.wav"))  # kiosk without a microphone
    wait_until(drv, lambda k: k["mode"] == "wav", 20, "WAV playback started")
    k = wait_until(drv, lambda k: k["mode"] is None and k["framesReceived"] > 0, 60, "WAV played to the end")
    assert k["status"].startswith("finished") and not k["errors"], (k["status"], k["errors"])
    assert k["framesReceived"] >= 60 and k["framesDrawn"] > 0
    gaps = np.array(k["lipGaps"])
    assert gaps.size > 0 and gaps.std() > 0.02
    assert not severe_console_errors(drv)


def test_typed_text_drives_the_avatar(server, browser):
    """The kiosk's text box: typed text spoken by the server's TTS engine, played into the stream like a WAV."""
    from toonsync.runtime.tts import available_engines

    if not available_engines():
        pytest.skip("no TTS engine installed (apt-get install flite espeak-ng festival)")
    drv = browser
    drv.get(server.url + "/")
    row = drv.find_element(By.ID, "say-row")
    deadline = time.monotonic() + 10
    while not row.is_displayed() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert row.is_displayed(), "the text box stays hidden although the server has a TTS engine"
    drv.find_element(By.ID, "say-text").send_keys("Hello there! It is a lovely morning, and I am glad you came.")
    drv.find_element(By.ID, "say").click()
    wait_until(drv, lambda k: k["mode"] == "wav", 30, "the spoken text playing")
    k = wait_until(drv, lambda k: k["mode"] is None and k["framesReceived"] > 0, 60, "the spoken text played")
    assert k["status"].startswith("finished") and not k["errors"], (k["status"], k["errors"])
    gaps = np.array(k["lipGaps"])
    assert k["framesReceived"] >= 50 and gaps.std() > 0.02  # the mouth moves with the speech
    assert not severe_console_errors(drv)


@pytest.fixture
def drawing_model(monkeypatch, data_dir):
    """The drawing landmark model; until the real one is in place (not written, or no weights exported), the
    points of drawn_character.json."""
    import json

    import cv2

    from toonsync.runtime import anime_landmarks
    from toonsync.runtime.errors import ModelError

    image = cv2.cvtColor(cv2.imread(str(data_dir / "drawn_character.png")), cv2.COLOR_BGR2RGB)
    try:
        anime_landmarks.fit_drawing_landmarks(image)
    except (NotImplementedError, ModelError):  # the server runs in this process: patching its module reaches it
        pts = np.array(json.loads((data_dir / "drawn_character.json").read_text())["landmarks"], np.float32)
        fit = anime_landmarks.DrawingFit(pts, 0.9, (0, 0, image.shape[1], image.shape[0]))
        monkeypatch.setattr(anime_landmarks, "fit_drawing_landmarks", lambda img: fit)


def adjust_state(drv, *keys: str) -> dict:
    return drv.execute_script(
        "const a = window.toonsyncAdjust; return Object.fromEntries(arguments[0].map((k) => [k, a[k]]));", list(keys)
    )


def test_drawing_points_dragged_then_used(server, browser, data_dir, drawing_model):
    drv = browser
    drv.get(server.url + "/")
    drv.find_element(By.ID, "drawing").send_keys(str(data_dir / "drawn_character.png"))
    deadline = time.monotonic() + 30
    while not (a := adjust_state(drv, "id", "points", "handles"))["id"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert a["id"], f"no adjust view; status: {kiosk(drv)['status']!r}"
    sheet = drv.find_element(By.ID, "adjust-canvas")
    assert sheet.is_displayed() and not drv.find_element(By.ID, "avatar").is_displayed()
    assert kiosk(drv)["status"].startswith("points found (confidence")
    before = np.array(a["points"])
    assert before.shape == (68, 2)

    # the chin handle, dragged 20 CSS px down with the mouse (pointer events)
    where = drv.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect(), [x, y] = window.toonsyncAdjust.handles.chin;"
        "return [x * r.width / c.width - r.width / 2, y * r.height / c.height - r.height / 2, c.width / r.width];",
        sheet,
    )
    dx, dy, k = round(where[0]), round(where[1]), where[2]
    chain = ActionChains(drv).move_to_element_with_offset(sheet, dx, dy).click_and_hold()
    chain.move_by_offset(0, 10).move_by_offset(0, 10).release().perform()
    deadline = time.monotonic() + 20
    while adjust_state(drv, "refits")["refits"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = np.array(adjust_state(drv, "points")["points"])
    assert after.shape == (68, 2), kiosk(drv)["status"]
    assert abs(after[8, 1] - before[8, 1] - 20 * k) < 1.5 and abs(after[8, 0] - before[8, 0]) < 1.5, (
        before[8],
        after[8],
    )
    np.testing.assert_allclose(after[[0, 16, 36, 45]], before[[0, 16, 36, 45]], atol=0.02)  # jaw ends, eyes stay
    if os.environ.get("TOONSYNC_UPDATE_DOCS") == "1":  # the adjust view after the drag, for docs/kiosk.md
        from toonsync.runtime.atomic import atomic_path

        with atomic_path(DOCS_PNG.with_name("kiosk_adjust.png")) as tmp:
            drv.save_screenshot(str(tmp))

    drv.find_element(By.ID, "adjust-use").click()
    k = wait_until(drv, lambda k: k["avatar"] != "default", 60, "avatar made from the adjusted drawing")
    assert k["status"].startswith("avatar ready"), k["status"]
    assert drv.find_element(By.ID, "avatar").is_displayed() and not sheet.is_displayed()
    deadline = time.monotonic() + 10  # the preview is drawn on the avatar canvas
    spread = 0
    while spread < 10 and time.monotonic() < deadline:
        spread = drv.execute_script(
            "const d = document.getElementById('avatar').getContext('2d').getImageData(0, 0, 512, 512).data;"
            "let lo = 255, hi = 0;"
            "for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }"
            "return hi - lo;"
        )
        time.sleep(0.1)
    assert spread >= 10
    assert not severe_console_errors(drv)


def edit_state(drv, *keys: str) -> dict:
    return drv.execute_script(
        "const e = window.toonsyncEdit; return Object.fromEntries(arguments[0].map((k) => [k, e[k]]));", list(keys)
    )


def wait_edit(drv, pred, budget_s: float, what: str) -> dict:
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        e = edit_state(drv, "base", "id", "shown", "attributes", "requests", "answers")
        if pred(e):
            return e
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {budget_s} s; editor: {e}; status: {kiosk(drv)['status']!r}")


def test_avatar_edited_with_live_preview_then_streamed(server, browser):
    import json
    import urllib.request

    drv = browser
    drv.get(server.url + "/")
    with urllib.request.urlopen(server.url + "/api/info", timeout=10) as r:
        size = json.loads(r.read())["size"]
    # the avatar canvas holds the server's frame size (frames drawn 1:1) and is never laid out larger
    deadline = time.monotonic() + 10
    while drv.execute_script("return document.getElementById('avatar').width") != size and time.monotonic() < deadline:
        time.sleep(0.1)
    width, height, shown = drv.execute_script(
        "const c = document.getElementById('avatar'); return [c.width, c.height, c.getBoundingClientRect().width];"
    )
    assert (width, height) == (size, size) and shown <= size + 0.5, (width, height, shown, size)

    drv.find_element(By.ID, "mic").click()  # a live stream: the edited avatar must replace it
    wait_until(drv, lambda k: k["framesDrawn"] >= 25 and k["streamAvatar"] == "default", 60, "the stream running")
    drv.find_element(By.ID, "edit-avatar").click()
    e = wait_edit(drv, lambda e: e["base"] == "default" and e["shown"] == "default", 20, "the editor open")
    panel, canvas = drv.find_element(By.ID, "edit"), drv.find_element(By.ID, "avatar")
    assert panel.is_displayed() and not canvas.is_displayed()
    hair = Select(drv.find_element(By.ID, "edit-hair-style"))
    assert hair.first_selected_option.get_attribute("value") == e["attributes"]["hair_style"] != "long_wavy"

    hair.select_by_value("long_wavy")
    e = wait_edit(drv, lambda e: e["shown"] not in (None, "default") and e["shown"] == e["id"], 30, "a new preview")
    first = e["id"]
    assert e["attributes"]["hair_style"] == "long_wavy" and e["attributes"]["hair_length"] == "long"
    assert Select(drv.find_element(By.ID, "edit-hair-length")).first_selected_option.get_attribute("value") == "long"
    img = drv.find_element(By.ID, "edit-preview")
    assert img.get_attribute("src").endswith(f"/api/avatar/{first}/preview.png")
    assert drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == size
    assert kiosk(drv)["status"].startswith("preview: long long_wavy hair")

    Select(drv.find_element(By.ID, "edit-glasses")).select_by_value("rectangular")  # changes add up
    e = wait_edit(drv, lambda e: e["shown"] not in (None, "default", first) and e["shown"] == e["id"], 30, "glasses")
    assert e["attributes"]["hair_style"] == "long_wavy" and e["attributes"]["glasses_shape"] == "rectangular"
    assert e["attributes"]["glasses"] is True
    if os.environ.get("TOONSYNC_UPDATE_DOCS") == "1":  # the editor panel, for docs/kiosk.md
        from toonsync.runtime.atomic import atomic_path

        with atomic_path(DOCS_PNG.with_name("kiosk_edit.png")) as tmp:
            drv.save_screenshot(str(tmp))

    drv.find_element(By.ID, "edit-use").click()
    edited = e["id"]
    k = wait_until(
        drv, lambda k: k["avatar"] == edited and k["streamAvatar"] == edited, 30, "the stream on the edited avatar"
    )
    assert k["status"] == "avatar ready" and not k["errors"], (k["status"], k["errors"])
    assert canvas.is_displayed() and not panel.is_displayed()
    n = k["framesDrawn"]
    wait_until(drv, lambda k: k["framesDrawn"] >= n + 25, 30, "frames of the edited avatar")
    drv.find_element(By.ID, "stop").click()
    wait_until(drv, lambda k: k["mode"] is None, 20, "stopped")
    assert not severe_console_errors(drv)
