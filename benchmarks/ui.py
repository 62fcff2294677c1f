"""The dashboard with 1,000 releases per environment, against `dockyard status --json` on the same data.

    .venv/bin/python benchmarks/ui.py        prints its rows (benchmarks/run includes them)

Measured: a `dockyard ui` process from its start to the first page served (what a person waits for
after typing the command), the page again when nothing changed, the page after a new release, and,
with Debian's chromium, a browser's navigation to its first contentful paint; each beside `dockyard
status --json` as a process on the same project.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

Row = tuple[str, str, str, str, str]
RELEASES = 1000


def make_project(directory: Path, releases: int = RELEASES) -> Path:
    """dev and prod in file stores, `releases` each: promotes with a rollback every 25th (held after)."""
    import yaml

    from dockyard.images import ImageRef
    from dockyard.manifest import Release, Rollback
    from dockyard.release.stores.file import FileStore
    from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Hold

    (directory / "Pulumi.yaml").write_text("name: bench\nruntime: python\n")
    for env in ("dev", "prod"):
        config = {"dockyard:role": "app", "dockyard:imageSource": "file", "dockyard:trust": "none",
                  "dockyard:database": False, "dockyard:services": {"web": {"port": 8080}, "worker": {}}}
        (directory / f"Pulumi.{env}.yaml").write_text(yaml.safe_dump({"config": config}))
        store = FileStore(directory / ".dockyard" / "releases" / env)
        for n in range(1, releases + 1):
            build = n if n % 25 else n - 2
            images = {s: ImageRef.parse_pinned(f"ghcr.io/acme/{s}@sha256:"
                                               f"{hashlib.sha256(f'{s}-{build}'.encode()).hexdigest()}")
                      for s in ("web", "worker")}
            at = f"2026-{1 + n * 11 // releases:02d}-{1 + n % 27:02d}T{n % 24:02d}:00:00Z"
            rollback = Rollback(of=n - 1, to=n - 2, cause="automatic", reason="web unhealthy") if n % 25 == 0 else None
            store.append(Release(images=images, source="dev:v1" if env == "prod" else "registry", by="bench",
                                 reason=f"release {n}", at=at, rollback=rollback), expected=n - 1 or None)
        store.label(DEPLOYED, releases)
        store.label(KNOWN_GOOD, releases)
        store.set_hold(Hold(version=releases, reason="bench", by="bench", at="2026-12-01T00:00:00Z"))
    return directory


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _timed_process(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT, timeout=120)
    return time.perf_counter() - start


def _serve(project: Path) -> tuple[subprocess.Popen, str, float]:
    """Start `dockyard ui`; return it, its address and the seconds until its first page was served."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "dockyard.release.cli", "ui", "--port", "0", "--json",
                                "--project-dir", str(project)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, cwd=ROOT)
    url = json.loads(process.stdout.readline())["url"]
    _get(url)
    return process, url, time.perf_counter() - start


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _first_paint(url: str) -> float | None:
    """Navigation start to first contentful paint in headless Chromium, or None without one."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dockyard-bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        samples = []
        for _ in range(5):
            chrome.get(url)
            paint = chrome.execute_script("const p = performance.getEntriesByName('first-contentful-paint')[0];"
                                          "return p ? p.startTime : null;")
            if paint is not None:
                samples.append(paint / 1000)
        return statistics.median(samples) if samples else None
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


def ui_rows(releases: int = RELEASES) -> list[Row]:
    python = sys.executable
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), releases)
        status = min(_timed_process([python, "-m", "dockyard.release.cli", "status", "--json", "--project-dir",
                                     str(project)]) for _ in range(5))
        baseline = f"{status * 1000:.0f} ms (status --json)"
        rows.append((f"dockyard status --json, {releases} releases x 2 envs (baseline)", f"{status * 1000:.0f} ms",
                     "-", "-", "-"))
        firsts = []
        for attempt in range(3):
            process, url, first = _serve(project)
            firsts.append(first)
            if attempt < 2:
                _stop(process)
        try:
            cold = min(firsts)
            rows.append((f"dockyard ui: start to first page, {releases} releases x 2 envs", f"{cold * 1000:.0f} ms",
                         baseline, f"{cold / status:.2f}", "-"))
            warm = []
            for _ in range(10):
                start = time.perf_counter()
                page = _get(url)
                warm.append(time.perf_counter() - start)
            rows.append(("dockyard ui: the page again, nothing changed", f"{statistics.median(warm) * 1000:.0f} ms",
                         baseline, f"{statistics.median(warm) / status:.2f}", f"page {len(page) // 1024} KiB"))
            history = []
            for _ in range(10):
                start = time.perf_counter()
                page = _get(url + "history.html")
                history.append(time.perf_counter() - start)
            rows.append(("dockyard ui: the history page (newest 100 per env), nothing changed",
                         f"{statistics.median(history) * 1000:.0f} ms", baseline,
                         f"{statistics.median(history) / status:.2f}", f"page {len(page) // 1024} KiB"))
            from dockyard.images import ImageRef
            from dockyard.manifest import Release
            from dockyard.release.stores.file import FileStore

            store = FileStore(project / ".dockyard" / "releases" / "prod")
            current = store.current()
            store.append(Release(images={s: ImageRef.parse_pinned(str(r)) for s, r in current.release.images.items()},
                                 source="dev:v1", at="2026-12-02T00:00:00Z"), expected=current.version)
            time.sleep(1.1)  # the version is looked at most once a second
            start = time.perf_counter()
            _get(url)
            changed = time.perf_counter() - start
            rows.append(("dockyard ui: the page after a new release (histories read again)",
                         f"{changed * 1000:.0f} ms", baseline, f"{changed / status:.2f}", "-"))
            paint = _first_paint(url)
            if paint is None:
                rows.append(("dockyard ui in Chromium: first contentful paint", "skipped: no chromium/chromedriver",
                             "-", "-", "-"))
            else:
                rows.append(("dockyard ui in Chromium: navigation to first contentful paint", f"{paint * 1000:.0f} ms",
                             baseline, f"{paint / status:.2f}", "-"))
        finally:
            _stop(process)
    return rows


if __name__ == "__main__":
    from benchmarks.bench import render

    print(render(ui_rows(int(os.environ.get("DOCKYARD_BENCH_RELEASES", RELEASES)))))
