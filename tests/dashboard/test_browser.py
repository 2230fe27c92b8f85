"""End to end in headless Chromium: the real dashboard process against the real model server.

Needs Debian's ``chromium`` (``apt-get install chromium chromium-driver``) and the ``playwright``
Python package; Playwright drives the system browser, no browser is downloaded. Screenshots go
to ``test-artifacts/``; they are copied to ``docs/images/`` when those are missing or when
``AIRPARADIS_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT, RunningServer, free_port, server_env, start_server

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path(os.environ.get("AIRPARADIS_CHROMIUM", "/usr/bin/chromium"))
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
DOC_IMAGES = REPO_ROOT / "docs" / "images"
MAX_IMAGE_BYTES = 300_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@contextlib.contextmanager
def running_dashboard(
    server_url: str, home: Path, workdir: Path, name: str, **env_vars: str
) -> Iterator[str]:
    """`airparadis dashboard` as a real process on a free port; yields its URL."""
    port = free_port()
    log = workdir / f"{name}.log"
    env = server_env(
        home,
        AIRPARADIS_DASHBOARD_REFRESH_SECONDS="3",
        AIRPARADIS_DASHBOARD_HEALTH_CHECK_SECONDS="1",
        AIRPARADIS_DASHBOARD_FEEDBACK_UNDO_SECONDS="1",
        **env_vars,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "airparadis", "dashboard", "--port", str(port),
         "--server-url", server_url],
        cwd=workdir, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"dashboard exited early:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/liveness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dashboard not up in 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log, ARTIFACTS / log.name)


@pytest.fixture(scope="module")
def dashboard_url(
    model_server: RunningServer, registry_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The dashboard aimed at the shared model server, with a champion and a challenger."""
    workdir = tmp_path_factory.mktemp("dashboard")
    with running_dashboard(model_server.url, registry_home, workdir, "dashboard-e2e") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_FLAGS)
        yield chromium
        chromium.close()


def screenshot(page: Any, name: str) -> Path:
    """Save to test-artifacts/ and, when asked or missing, to docs/images/ (kept small)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    _shrink(path)
    target = DOC_IMAGES / f"{name}.png"
    if os.environ.get("AIRPARADIS_UPDATE_SCREENSHOTS") == "1" or not target.exists():
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return path


def _shrink(path: Path) -> None:
    """Palette PNG: a UI screenshot keeps its look at a fraction of the size."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib (training extra); without it, as is
        return

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def feedback_kpi(page: Any) -> int:
    """The Feedback KPI; retried, since each refresh redraws it."""
    deadline = time.monotonic() + 20
    while True:
        text = page.locator(".kpi-feedback .ap-kpi-value").first.inner_text(timeout=20_000)
        if re.fullmatch(r"[\d,]+", text.strip()):
            return int(text.strip().replace(",", ""))
        if time.monotonic() > deadline:
            raise AssertionError(f"no feedback count on the ops page: {text!r}")
        time.sleep(0.2)


def open_ops(page: Any, url: str) -> None:
    page.goto(f"{url}/ops")
    expect = sync_api.expect
    expect(page.locator(".ap-updated")).not_to_contain_text("never", timeout=30_000)
    expect(page.locator(".ap-server-status")).to_contain_text("Model server ready")


def test_classify_give_feedback_and_see_it_counted(browser: Any, dashboard_url: str) -> None:
    expect = sync_api.expect
    context = browser.new_context(viewport={"width": 1280, "height": 1160})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Ops view first: how much feedback the server has so far.
    open_ops(page, dashboard_url)
    before = feedback_kpi(page)

    # User view: an empty input gets an inline message, not an error.
    page.goto(f"{dashboard_url}/")
    expect(page.locator(".ap-server-status")).to_contain_text("Model server ready")
    page.locator(".ap-submit button").click()
    expect(page.locator(".ap-message")).to_contain_text("Type or paste a tweet first")

    page.locator(".ap-input textarea").fill(
        "I love this airline, the crew was amazing and the flight was smooth!\n"
        "Worst delay ever, my bag is lost and nobody helps"
    )
    page.locator(".ap-submit button").click()
    cards = page.locator(".ap-prediction")
    expect(cards).to_have_count(2, timeout=20_000)
    expect(cards.nth(0).locator(".ap-badge")).to_contain_text("Positive")
    expect(cards.nth(1).locator(".ap-badge")).to_contain_text(re.compile("Negative|Uncertain"))
    expect(cards.nth(0)).to_contain_text(re.compile(r"(?<!\d)\d{1,2} % confident"))
    expect(cards.nth(0)).to_contain_text("model version")

    # Each card highlights the words that drove it, green toward positive, red toward negative.
    love = cards.nth(0).locator("span.ap-tok-pos", has_text=re.compile(r"^love$"))
    expect(love).to_have_count(1, timeout=20_000)
    expect(love).to_have_attribute(
        "title", re.compile(r"^love: toward positive, \+\d+\.\d{3} log-odds$")
    )
    expect(page.locator(".ap-legend")).to_have_count(1)  # one legend, not one per card
    expect(page.locator(".ap-legend")).to_contain_text("green toward positive")
    expect(cards.nth(1).locator("span.ap-tok-neg").first).to_be_visible()

    cards.nth(0).locator(".ap-fb-correct button").click()
    expect(cards.nth(0).locator(".ap-feedback-note")).to_contain_text(
        "Thanks! Saved at", timeout=20_000
    )
    expect(page.locator(".ap-history")).to_contain_text("✓ correct")
    user_png = screenshot(page, "dashboard-user")

    # Ops view again: the feedback is counted.
    page.set_viewport_size({"width": 1280, "height": 1860})
    open_ops(page, dashboard_url)
    expect(page.locator(".kpi-feedback .ap-kpi-value")).to_have_text(
        f"{before + 1:,}", timeout=20_000
    )
    expect(page.locator(".ap-models")).to_contain_text("challenger")
    # One name, "wrong-prediction rate": over the selected window, with the rule it is judged by.
    kpi = page.locator(".kpi-wrong-rate")
    expect(kpi).to_contain_text("Wrong-prediction rate")
    expect(kpi.locator(".ap-kpi-value")).to_have_text(re.compile(r"^\d+ %$"))
    expect(kpi.locator(".ap-kpi-detail")).to_contain_text(
        "alerts at rate ≥ 30 % over 1 h (≥ 20 verdicts, ≥ 2 clients)"
    )
    expect(page.locator(".kpi-alerts .ap-kpi-detail")).to_contain_text(
        "≥ 3 wrong in 5 min from ≥ 2 clients"
    )
    expect(page.locator(".kpi-predictions .ap-kpi-detail")).to_contain_text(
        re.compile(r"since the server started \(\w{3} \d+ \w{3} \d\d:\d\d UTC\)")
    )
    expect(page.locator(".ap-ops-page, .ap-page").first).not_to_contain_text("Misprediction")
    # The predict stage is resolved below kserve's 5 ms first bucket; counted in requests.
    latency = page.locator(".ap-latency")
    expect(latency.locator(".ap-latency-table")).to_contain_text(
        re.compile(r"\d\.\d\d ms|< 0\.05 ms")
    )
    expect(latency).to_contain_text("predict requests measured since the server started")
    # Input drift: this server's bundle has a reference; the tests send it few tweets.
    drift = page.locator(".ap-drift")
    expect(drift.locator(".ap-drift-status")).to_contain_text(
        re.compile(r"Collecting: [\d,]+ of 200 tweets|Stable|Drifting")
    )
    expect(drift.locator(".ap-drift-table")).to_contain_text("Training reference")
    oov = drift.locator(".ap-drift-table .tabulator-cell", has_text="Out-of-vocabulary tokens")
    expect(oov).to_have_count(1, timeout=20_000)
    time.sleep(1.0)  # let the plots draw
    path = screenshot(page, "dashboard-ops")
    # Seven days: one time label a day on the feedback charts; the KPIs follow the window.
    page.locator("select").first.select_option(label="Last 7 days")
    expect(page.locator(".kpi-feedback .ap-kpi-detail")).to_contain_text(
        "Last 7 days", timeout=20_000
    )
    expect(page.locator(".kpi-alerts .ap-kpi-detail")).to_contain_text("Last 7 days")
    time.sleep(1.0)  # let the plots draw
    page.locator(".ap-feedback").screenshot(path=str(ARTIFACTS / "ops-feedback-7-days.png"))
    context.close()  # ends the session and its periodic refresh
    assert path.stat().st_size < MAX_IMAGE_BYTES
    assert user_png.stat().st_size < MAX_IMAGE_BYTES
    assert not errors, errors


def test_banner_while_the_server_is_down_clears_when_it_starts(
    browser: Any, tiny_bundle: Path, tmp_path: Path
) -> None:
    expect = sync_api.expect
    port = free_port()
    dead = f"http://127.0.0.1:{port}"
    with running_dashboard(dead, tmp_path, tmp_path, "dashboard-server-down") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/")
        banner = page.locator(".ap-banner")
        expect(banner).to_contain_text("model server is unavailable", timeout=20_000)
        expect(page.locator(".ap-server-status")).to_contain_text("unavailable")
        # Typing and analyzing while it is down: an inline message, the text is kept.
        page.locator(".ap-input textarea").fill("where is my bag?")
        page.locator(".ap-submit button").click()
        expect(page.locator(".ap-message")).to_contain_text("Your text is kept")

        server = start_server(tmp_path / "server", str(tiny_bundle), port=port)
        try:
            # No reload: the periodic health check clears the banner and the page works again.
            expect(banner).to_be_hidden(timeout=20_000)
            expect(page.locator(".ap-server-status")).to_contain_text("Model server ready")
            page.locator(".ap-submit button").click()
            expect(page.locator(".ap-prediction")).to_have_count(1, timeout=20_000)
        finally:
            page.close()
            server.stop()
    assert not errors, errors


def test_ops_quality_card_of_a_calibrated_model(
    browser: Any,
    calibrated_server: RunningServer,
    shared_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Labels collected, raw vs calibrated macro-F1, the reliability curve and the estimated
    live share of positive tweets, as an operator sees them."""
    from tests.dashboard.conftest import skewed_airline_tweets

    expect = sync_api.expect
    tweets = skewed_airline_tweets(shared_dir, 100, positives=15)
    predictions = httpx.post(
        calibrated_server.predict_url, json={"instances": tweets}, timeout=30
    ).json()["predictions"]
    for tweet, prediction, truth in zip(
        tweets[10:20], predictions[10:20], ["positive"] * 5 + ["negative"] * 5, strict=True
    ):
        body = {"tweet": tweet, "predicted_label": prediction["label"], "correct_label": truth}
        assert httpx.post(f"{calibrated_server.url}/v1/feedback", json=body).status_code == 201
    workdir = tmp_path_factory.mktemp("dashboard-quality")
    with running_dashboard(calibrated_server.url, workdir, workdir, "dashboard-quality") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        open_ops(page, url)
        card = page.locator(".ap-quality")
        kpis = card.locator(".ap-kpi-value")
        expect(kpis.nth(0)).to_have_text("10", timeout=20_000)  # labels collected
        expect(card).to_contain_text("5 negative · 5 positive")
        expect(kpis.nth(1)).to_have_text(re.compile(r"^0\.\d{3} → 0\.\d{3}$"))
        expect(kpis.nth(2)).to_have_text(re.compile(r"^\d+ %$"))  # the live estimate
        expect(card.locator(".ap-quality-state")).to_contain_text(
            re.compile(r"Calibrated \((platt|temperature|identity)\) on 400 labelled feedbacks")
        )
        table = card.locator(".ap-quality-table")
        expect(table.locator(".tabulator-cell", has_text="Complaints caught")).to_have_count(
            1, timeout=20_000
        )
        expect(table.locator(".tabulator-col-title", has_text="Calibrated")).to_have_count(1)
        expect(card.locator("canvas").first).to_be_visible()  # the reliability curve
        card.scroll_into_view_if_needed()
        time.sleep(1.0)  # let the plot draw
        path = screenshot(card, "dashboard-ops-quality")
        page.close()
    assert path.stat().st_size < MAX_IMAGE_BYTES
    assert not errors, errors
