"""doctor's report and the scorecard in headless Chromium, at 1400 px and at a phone's width: every chart
drawn, its marks labelled, no console error (the page's Content-Security-Policy would report anything it tried
to load), nothing wider than the screen, the hostile text shown as text. No stack needed: sample data."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pages_samples import HOSTILE, cards, doctor_charts, doctor_report
from sre_workshop.diagnose.report import render
from sre_workshop.scenarios.html import page

WIDTHS = {"wide": (1400, 900, False), "phone": (390, 844, True)}


def show(browser, path: Path, width: str) -> None:
    """Open `path` at one of WIDTHS and wait until its script has drawn the charts."""
    w, h, mobile = WIDTHS[width]
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": mobile})
    browser.get_log("browser")  # what earlier pages said
    browser.get(path.as_uri())
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-charts-drawn"))


def check(browser, width: str) -> dict[str, str]:
    """Assert what every page must be; return each chart's title -> the labels drawn on it."""
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    figures = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    assert figures and int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-charts-drawn")) == len(figures)
    screen = WIDTHS[width][0]
    assert browser.execute_script("return document.documentElement.scrollWidth") <= screen
    for figure in figures:
        canvas = figure.find_element(By.TAG_NAME, "canvas")
        assert 200 <= canvas.size["width"] <= screen and canvas.size["height"] >= 100
    assert HOSTILE in browser.find_element(By.TAG_NAME, "body").text  # shown, as text
    return {f.get_attribute("data-title"): f.get_attribute("data-marks") for f in figures}


@pytest.mark.parametrize("width", WIDTHS)
def test_doctors_report(browser, tmp_path, width):
    path = tmp_path / "report.html"
    path.write_text(render(doctor_report(), doctor_charts()))
    show(browser, path, width)
    marks = check(browser, width)
    assert all(m == "first symptom|doctor's check" for m in marks.values()), marks
    assert any(title.startswith("CPU at doctor's check") for title in marks)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".finding figure.chart")) == 4  # CPU, leak and fit, 5xx
    browser.save_screenshot(str(tmp_path / f"report-{width}.png"))


@pytest.mark.parametrize("width", WIDTHS)
def test_the_scorecard(browser, tmp_path, width):
    path = tmp_path / "scorecard.html"
    path.write_text(page(cards()))
    show(browser, path, width)
    marks = check(browser, width)
    timelines = [f.get_attribute("data-marks") for f in browser.find_elements(By.CSS_SELECTOR, "figure.timeline")]
    assert timelines[0] == "injected|first diagnosis|detected|cleared|recovered"
    assert timelines[2] == "injected|restart_service|submitted|mitigated|recovered"
    assert len(marks) == 3 and "assisted" in browser.find_element(By.CSS_SELECTOR, "table.compare").text
    browser.save_screenshot(str(tmp_path / f"scorecard-{width}.png"))
