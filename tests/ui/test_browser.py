"""The dashboard in real headless Chromium (Debian's chromium and chromium-driver, driven by selenium).

The demo's story is told through the command with images in a real loopback registry; the page must
show it, and a promote made by a separate `dockyard` process must appear on the open page without a
reload. Screenshots of each view go to .dockyard/screenshots/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockyard.release.ui.web import create_app
from tests.support.oci_registry import start_registry
from tests.ui.test_data import freeze, git_history
from tests.ui.conftest import BRANCH, SCREENSHOTS, dashboards, new_story, serve, tell_the_demo_story

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def live_story(tmp_path, aws_region):
    for name in ("registry", "project"):
        (tmp_path / name).mkdir()
    registry = start_registry(tmp_path / "registry")  # skips with one line without docker-registry
    try:
        story = new_story(tmp_path / "project", registry)
        # The project is a git checkout; each build's images carry the commit they were built from.
        commits = git_history(story)
        story.revisions = {"r1": commits["start"], "r2": commits["web2"], "r3": commits["web2"],
                           "banner": commits["web1"]}
        builds = tell_the_demo_story(story)
        # A freeze in dev now; prod open all day (also at the real time the promote below runs).
        freeze(story, "dev", "deny", "release-freeze", -1, 2)
        freeze(story, "prod", "allow", "office-hours", -1, 24)
        yield story, builds
    finally:
        registry.stop()


def stage(browser, env: str):
    """The stage's element, release line and digests; read again if the live update swapped it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(20):
        try:
            return _stage(browser, env)
        except StaleElementReferenceException:
            if attempt == 19:
                raise
            time.sleep(0.1)


def _stage(browser, env: str):
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.ID, f"stage-{env}")
    release = element.find_element(By.CSS_SELECTOR, ".release").text
    digests = {row.get_attribute("data-service"): row.find_element(By.CSS_SELECTOR, "code.digest")
               .get_attribute("data-image") for row in element.find_elements(By.CSS_SELECTOR, "tr[data-service]")}
    return element, release, digests


def shoot(browser, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1500, max(900, browser.execute_script("return document.body.scrollHeight") + 20))
    path = SCREENSHOTS / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    return path


def test_the_page_shows_the_story_and_follows_a_promote_made_on_the_command_line(live_story, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    story, builds = live_story
    running = serve(create_app(dashboards(story, min_interval=0.5)))
    try:
        browser.get(running.url)
        # The pipeline: registry -> dev -> prod, each with its release and digests; both held.
        order = [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, ".flow .stage")]
        assert order == ["stage-registry", "stage-dev", "stage-prod"]
        dev, dev_release, dev_digests = stage(browser, "dev")
        assert "release 4" in dev_release and "held" in dev_release
        assert dev_digests == builds["r2"]  # restored by the automatic rollback
        assert "automatic rollback: v3 undone, v2 restored" in dev.find_element(By.CSS_SELECTOR, ".rollback").text
        prod, prod_release, prod_digests = stage(browser, "prod")
        assert "release 3" in prod_release and "held" in prod_release and prod_digests == builds["r1"]
        assert "release 2 misbehaves" in prod.find_element(By.CSS_SELECTOR, ".hold").text
        waiting = browser.find_element(By.CSS_SELECTOR, '.promotion[data-into="prod"]')
        assert "dockyard promote prod --from dev --release-hold" in waiting.text
        # What the promote would bring, in commits: web's two, newest first, as `promote` lists them.
        head = waiting.find_element(By.CSS_SELECTOR, '.changelog-head[data-service="web"]').text
        assert head.startswith("web: 2 commit(s) to its build inputs") and head.endswith("these arrive:")
        commits = [li.text for li in waiting.find_elements(By.CSS_SELECTOR, ".changelog ul.commits li")]
        assert [c.split(" (")[0][8:] for c in commits] == ["web: pin the base image", "web: new greeting"]
        # Freeze windows: dev closed by its freeze, prod open until the end of its window.
        assert "Window closed by release-freeze; opens " in dev.find_element(By.CSS_SELECTOR, ".window.closed").text
        assert "frozen" in dev_release and "frozen" not in prod_release
        assert "Window open until " in prod.find_element(By.CSS_SELECTOR, ".window.open").text
        shoot(browser, "pipeline")

        browser.find_element(By.LINK_TEXT, "History").click()
        automatic = browser.find_element(By.CSS_SELECTOR, '#timeline-dev li[data-kind="automatic rollback"]')
        assert "cause: the stack deployed web as" in automatic.text
        failed = browser.find_element(By.CSS_SELECTOR, '#timeline-dev li[data-version="3"]')
        assert "verification failed" in failed.text
        record = automatic.find_element(By.CSS_SELECTOR, "dl.record")
        assert not record.is_displayed()
        automatic.find_element(By.TAG_NAME, "summary").click()  # selecting an event shows its release record
        assert record.is_displayed() and builds["r2"]["web"] in record.text and "automatic: v3 → v2" in record.text
        shoot(browser, "history")

        browser.find_element(By.LINK_TEXT, "Branch previews").click()
        card = browser.find_element(By.CSS_SELECTOR, "article.branch")
        assert BRANCH in card.text and "base\ndev" in card.text and "removed by gc" in card.text
        shoot(browser, "branches")

        browser.find_element(By.LINK_TEXT, "Delivery metrics").click()
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 5  # 2 weekly, 3 across environments
        prod_row = browser.find_element(By.CSS_SELECTOR, 'table.figures tr[data-env="prod"]').text
        assert "50% (1 of 2: 1 manual)" in prod_row  # as `dockyard metrics prod` says it
        shoot(browser, "metrics")

        # Live: a promote from another process shows up on the open page, without a reload.
        browser.find_element(By.LINK_TEXT, "Pipeline").click()
        browser.execute_script("window.notReloaded = true;")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCKYARD_USER": "bob"}
        promoted = subprocess.run(
            [sys.executable, "-m", "dockyard.release.cli", "promote", "prod", "--from", "dev", "--release-hold",
             "--no-deploy", "--yes", "--reason", "release 2 fixed", "--project-dir", str(story.project.dir)],
            env=env, capture_output=True, text=True, timeout=60)
        assert promoted.returncode == 0, promoted.stderr
        started = time.monotonic()
        WebDriverWait(browser, 10, poll_frequency=0.2).until(lambda b: "release 4" in stage(b, "prod")[1])
        seconds = time.monotonic() - started
        assert browser.execute_script("return window.notReloaded === true;")
        prod, prod_release, prod_digests = stage(browser, "prod")
        assert prod_digests == builds["r2"] and "held" not in prod_release
        assert "bob" in prod.find_element(By.CSS_SELECTOR, ".meta").text
        assert seconds < 10
        shoot(browser, "pipeline-after-promote")
    finally:
        running.stop()
