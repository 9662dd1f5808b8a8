"""`refpool trace`'s HTML page in headless Chromium: every lane and event drawn, hover details, a screenshot.

Run as a script to save the crash scenario's page as a PNG (spec/trace-crash.png):
    .venv/bin/python tests/test_trace_browser.py spec/trace-crash.png
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refpool.trace import html
from refpool.trace.record import Trace, TraceEvent
from refpool.trace.scenarios import run_scenario

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1400, 900)

if __name__ != "__main__":
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            f"{CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver",
            allow_module_level=True,
        )

from selenium import webdriver  # noqa: E402  (after the skip: it may not be installed)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from trace_checks import flat_png, png_colours  # noqa: E402


def chromium(profile: Path) -> Any:
    """Headless Chromium through the system's chromedriver: Selenium downloads nothing."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def crash() -> Trace:
    return run_scenario("crash", 2)


def load(driver: Any, trace: Trace, folder: Path) -> None:
    path = folder / "trace.html"
    path.write_text(html.render(trace), encoding="utf-8")
    driver.get(path.as_uri())


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, crash: Trace, tmp_path: Path) -> Any:
    """The crash scenario's page, loaded from a file."""
    load(browser, crash, tmp_path)
    return browser


# Each lane's name and band, each event's lanes and the centre of its mark, as the browser drew them.
DRAWN = """
const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
const svg = document.getElementById("trace");
return {
  svg: box(svg),
  lanes: Array.from(svg.querySelectorAll("g.lane")).map(
    (g) => ({name: g.getAttribute("data-lane"), band: box(g.querySelector("rect.band"))})),
  events: Array.from(svg.querySelectorAll("g.event")).map((g) => ({
    lane: g.getAttribute("data-lane"), target: g.getAttribute("data-target"),
    mark: box(g.querySelector("circle.mark")),
    arrow: g.querySelector("line.message") ? box(g.querySelector("line.message")) : null})),
};
"""


def inside(point: tuple[float, float], rect: list[float]) -> bool:
    x, y = point
    left, top, width, height = rect
    return left <= x <= left + width and top <= y <= top + height


def drawn_problems(driver: Any, trace: Trace) -> list[str]:
    """Each lane has its band; each event its mark on its lane and, for a message, an arrow that
    reaches the target's band."""
    drawn = driver.execute_script(DRAWN)
    if [lane["name"] for lane in drawn["lanes"]] != list(trace.lanes):
        return [f"lanes {[lane['name'] for lane in drawn['lanes']]}, expected {trace.lanes}"]
    bands = {lane["name"]: lane["band"] for lane in drawn["lanes"]}
    problems = [f"lane {name} has no area" for name, band in bands.items() if band[2] <= 0 or band[3] <= 0]
    if len(drawn["events"]) != len(trace.events):
        problems.append(f"{len(drawn['events'])} events drawn for {len(trace.events)}")
    for shown, event in zip(drawn["events"], trace.events, strict=False):
        if (shown["lane"], shown["target"]) != (event.lane, event.target):
            problems.append(f"{event.summary}: drawn as {shown['lane']} -> {shown['target']}")
        left, top, width, height = shown["mark"]
        centre = (left + width / 2, top + height / 2)
        if width <= 0 or not inside(centre, bands[event.lane]) or not inside(centre, drawn["svg"]):
            problems.append(f"{event.summary}: its mark is not on lane {event.lane}")
        if event.target is not None:
            a_left, a_top, a_width, a_height = shown["arrow"] or (0, 0, 0, 0)
            far_end = (a_left + a_width / 2, a_top if a_top < top else a_top + a_height)
            if not inside(far_end, bands[event.target]):
                problems.append(f"{event.summary}: its arrow does not reach {event.target}")
    return problems


def hover_problems(driver: Any, trace: Trace, index: int) -> list[str]:
    """Hovering over the index-th event's mark shows that event's details, and only then."""
    details = driver.find_element(By.ID, "details")
    expected = trace.events[index].details.splitlines()
    if details.text.splitlines() == expected:
        return ["the details box shows the event before the hover"]
    mark = driver.find_elements(By.CSS_SELECTOR, "#trace g.event circle.mark")[index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'});", mark)
    ActionChains(driver).move_to_element(mark).perform()
    shown = details.text.splitlines()
    return [] if shown == expected else [f"the details box shows {shown}, expected {expected}"]


def reaped_with_loss(trace: Trace) -> int:
    return next(i for i, e in enumerate(trace.events) if e.kind == "WorkerReaped" and "lost (" in e.summary)


def test_every_lane_and_every_event_is_drawn_on_its_lane(page: Any, crash: Trace) -> None:
    assert drawn_problems(page, crash) == []


def test_hovering_an_event_shows_its_details(page: Any, crash: Trace) -> None:
    assert hover_problems(page, crash, reaped_with_loss(crash)) == []
    assert "WorkerReaped(worker_id=1" in page.find_element(By.ID, "details").text


def test_the_checks_catch_marks_on_the_wrong_lane_and_a_dead_details_box(
    browser: Any, crash: Trace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draw = html.event_mark

    def one_lane_down(index: int, event: TraceEvent, x: float, middles: dict[str, float]) -> str:
        if event.lane != "result handler":
            return draw(index, event, x, middles)
        return draw(
            index, event, x, {**middles, "result handler": middles["result handler"] + html.LANE_HEIGHT}
        )

    monkeypatch.setattr(html, "event_mark", one_lane_down)  # seeded: a lane's marks drawn off it
    monkeypatch.setattr(html, "SCRIPT", "")  # seeded: nothing fills the details box
    load(browser, crash, tmp_path)
    assert any("not on lane result handler" in p for p in drawn_problems(browser, crash))
    assert hover_problems(browser, crash, reaped_with_loss(crash)) != []


def test_the_page_screenshot_is_a_drawing(page: Any) -> None:
    png = page.get_screenshot_as_png()
    assert png_colours(png) >= 16


def test_the_screenshot_check_catches_a_blank_page() -> None:
    assert png_colours(flat_png(40, 30, (255, 255, 255))) == 1


def save_screenshot(target: Path) -> None:
    """The crash scenario's page as a PNG, for the README (spec/trace.md)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crash.html"
        path.write_text(html.render(run_scenario("crash", 2)), encoding="utf-8")
        driver = chromium(Path(folder) / "profile")
        try:
            driver.get(path.as_uri())
            # The whole page in the viewport, however tall: the window's own size counts its frame.
            height = driver.execute_script("return document.documentElement.scrollHeight")
            metrics = {"width": WINDOW[0], "height": height, "deviceScaleFactor": 1, "mobile": False}
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            mark = driver.find_elements(
                By.CSS_SELECTOR, "#trace g.event[data-kind=WorkerReaped] circle.mark"
            )[0]
            ActionChains(driver).move_to_element(mark).perform()
            target.write_bytes(driver.get_screenshot_as_png())
        finally:
            driver.quit()


if __name__ == "__main__":
    save_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else os.path.join("spec", "trace-crash.png")))
