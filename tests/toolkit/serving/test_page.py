"""The web page in a real headless Chromium: pick the model, upload an image, see labels and score bars."""

import io
import os
import shutil

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
BAR = (31, 111, 209)  # the page's score-bar colour (#1f6fd1)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.skip("Chromium could not be installed here: apt-get install chromium chromium-driver (make test tries)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1000,900", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_upload_image_and_see_scores(browser, server, tmp_path, reference, pngs):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    image_file = tmp_path / "digit.png"
    image_file.write_bytes(pngs[1])
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "tiny" in d.find_element(By.ID, "models").text)
    assert "image_classification" in browser.find_element(By.ID, "models").text
    Select(browser.find_element(By.ID, "model")).select_by_value("tiny")
    browser.find_element(By.ID, "file").send_keys(str(image_file))
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith(("done", "error")))
    assert browser.find_element(By.ID, "status").text == "done: tiny version 1"

    rows = browser.find_elements(By.CSS_SELECTOR, "#result tr.prediction")
    shown = [(r.find_element(By.CLASS_NAME, "label").text, float(r.find_element(By.CLASS_NAME, "score").text)) for r in rows]
    scores = reference["scores"][1]
    labels = ["ant", "bee", "cat"]
    want = sorted(zip(labels, scores), key=lambda pair: -pair[1])
    assert [label for label, _ in shown] == [label for label, _ in want]
    np.testing.assert_allclose([s for _, s in shown], [s for _, s in want], atol=1e-4)

    # Screenshot: the score bars are drawn with widths 200 px x score and 14 px high; the uploaded image is
    # drawn on the canvas (not blank).
    screenshot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")).astype(int)
    (tmp_path / "page.png").write_bytes(browser.get_screenshot_as_png())
    blue = (np.abs(screenshot - np.array(BAR)).sum(axis=-1) <= 6)
    expected = sum(round(200 * s) * 14 for _, s in want)
    assert abs(int(blue.sum()) - expected) <= 0.1 * expected + 60, (int(blue.sum()), expected)
    canvas = browser.find_element(By.ID, "canvas")
    x, y, w, h = (int(canvas.rect[k]) for k in ("x", "y", "width", "height"))
    assert w >= 200 and h >= 200
    region = screenshot[y + 2:y + h - 2, x + 2:x + w - 2]
    assert region.std() > 20  # the random-pixel image, not an empty canvas


def test_page_reports_errors(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"definitely not a PNG")
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "tiny" in d.find_element(By.ID, "models").text)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith(("done", "error")))
    assert "cannot decode the image bytes" in browser.find_element(By.ID, "status").text
