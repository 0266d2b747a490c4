"""The sessions and Metrics pages in a real browser: Debian's chromium, headless, driven by
Playwright, against the real Airflow of the integration tests while the example sessions run;
screenshots are saved under the test's tmp path."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cicd_devkit.airflow_stack import ADMIN

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXAMPLE_REPOS = ("it/lint-failure", "it/transient-network", "it/bisect-regression")
COLUMNS = ("Repository", "Attempt", "Strategy", "State")
WAIT_MS = 30_000  # any single browser action or wait
NAVIGATION_MS = 60_000  # a page load, while the API server is busy with the sessions
APPEAR_S = 300  # for the sessions to show up in the list at all (they are being created)


def _install_chromium() -> str | None:
    """Install Debian's chromium with apt-get; the reason it cannot be done, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root: cannot apt-get install chromium"
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = (
        (["apt-get", "update", "-qq"], 300),
        (["apt-get", "install", "-y", "-qq", "chromium"], 900),
    )
    for cmd, timeout in steps:
        try:
            done = subprocess.run(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(cmd)} did not finish in {timeout}s"
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip()[-500:]
            return f"{' '.join(cmd)} failed ({done.returncode}): {tail}"
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium, installed with apt-get when missing (as root)."""
    if not CHROMIUM.exists():
        reason = _install_chromium()
        if reason is not None:
            pytest.skip(f"Debian's chromium is not available: {reason}")
        if not CHROMIUM.exists():
            pytest.skip(f"apt-get installed chromium but {CHROMIUM} is missing")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    """A headless chromium through Playwright (its own browser builds are never downloaded)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)"
    )
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=chromium, headless=True, args=LAUNCH_ARGS, timeout=NAVIGATION_MS
        )
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, timeout=WAIT_MS)
    print(f"screenshot: {path}")
    return path


def _wait_for_cookie(page: Any, name: str, timeout: float = WAIT_MS / 1000) -> dict:
    # page.wait_for_timeout, not time.sleep: Playwright's sync API handles its events meanwhile
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in page.context.cookies() if c["name"] == name]
        if found:
            return found[0]
        page.wait_for_timeout(200)
    raise AssertionError(f"the UI set no {name} cookie within {timeout}s")


def _rows(page: Any) -> dict[str, dict[str, str]]:
    """The sessions table: repository -> {column: text, 'href': session link}."""
    headers = [h.inner_text().strip() for h in page.locator("table th").all()]
    rows: dict[str, dict[str, str]] = {}
    for tr in page.locator("table tr:has(td)").all():
        cells = [c.inner_text().strip() for c in tr.locator("td").all()]
        row = dict(zip(headers, cells, strict=False))
        link = tr.locator("td a").first
        row["href"] = link.get_attribute("href") or ""
        rows[row.get("Repository", "")] = row
    return rows


def _login(page: Any, base: str, password: str) -> None:
    """Through Airflow's own login page (SimpleAuthManager's React form under /auth/login)."""
    page.goto(f"{base}/", wait_until="domcontentloaded")
    page.wait_for_url("**/auth/login**", timeout=NAVIGATION_MS)
    page.locator("input[name=username]").fill(ADMIN)
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=NAVIGATION_MS)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _check_metrics(page: Any, base: str, tmp_path: Path) -> None:
    """The Metrics page in Airflow's navigation, its charts drawn and sized, its JSON."""
    page.goto(f"{base}/")
    page.get_by_role("button", name="Browse").click()
    entry = page.get_by_role("menuitem", name="CI/CD metrics")
    entry.wait_for(state="visible")
    entry.click()
    iframe = page.locator("iframe").first
    iframe.wait_for(state="attached")
    assert (iframe.get_attribute("src") or "").endswith("/cicd/metrics")
    inner = page.frame_locator("iframe").first
    inner.locator("svg.chart").first.wait_for(state="visible")
    assert inner.locator("h1").inner_text() == "CI/CD orchestration metrics"
    # Airflow's own navigation stays around the page
    assert page.get_by_role("button", name="Browse").is_visible()
    framed = _shot(page, tmp_path, "metrics-in-airflow")

    resp = page.goto(f"{base}/cicd/metrics")
    assert resp is not None and resp.status == 200
    assert page.title() == "CI/CD orchestration metrics"
    titles = [h.inner_text() for h in page.locator("section.chart-card h2").all()]
    assert titles[:3] == ["Fix rate per category", "Fix rate per fixer", "Attempts used"], titles
    assert titles[3].startswith("Sessions per day"), titles
    drawn = 0
    for card in page.locator("section.chart-card").all():
        title = card.locator("h2").inner_text()
        if card.locator("svg.chart").count() == 0:
            assert "No data yet." in card.inner_text(), title
            continue
        drawn += 1
        chart = card.locator("svg.chart")
        box = chart.bounding_box()
        # bars of rates: one row of about 20 px each; columns of counts: a plot of 150 px
        tall = 20 if title.startswith("Fix rate") else 100
        assert box and box["width"] > 200 and box["height"] > tall, (title, box)
        assert chart.locator("rect.bar").count() >= 1, title
    assert drawn >= 2  # at least attempts used and sessions per day (sessions closed)
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Metrics"
    figures = page.request.get(f"{base}/cicd/api/metrics").json()
    assert figures["sessions"]["total"] >= len(EXAMPLE_REPOS), figures["sessions"]
    assert figures["sessions"]["closed"] >= 1
    shot = _shot(page, tmp_path, "metrics")
    for path in (framed, shot):
        width, height = _png_size(path)
        assert width >= 1000 and height >= 400, (path, width, height)


@pytest.mark.timeout(1500)  # chromium install + Airflow start + the session
def test_sessions_pages_in_a_browser(browser, airflow_env, opened, tmp_path):
    base = airflow_env.stack.url
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(NAVIGATION_MS)
    page = context.new_page()
    try:
        # not logged in: refused
        resp = page.goto(f"{base}/cicd/sessions")
        assert resp is not None and resp.status in (401, 403), resp and resp.status
        assert "CI/CD orchestration sessions" not in page.content()

        _login(page, base, airflow_env.stack.password)
        assert _wait_for_cookie(page, "_token")["value"]

        # the list, while the example sessions run: reload until all three are there
        deadline = time.monotonic() + APPEAR_S
        while True:
            resp = page.goto(f"{base}/cicd/sessions")
            assert resp is not None and resp.status == 200, resp and resp.status
            rows = _rows(page)
            if all(repo in rows for repo in EXAMPLE_REPOS) or time.monotonic() > deadline:
                break
            page.wait_for_timeout(2000)
        assert page.locator("h1").inner_text() == "CI/CD orchestration sessions"
        headers = [h.inner_text().strip() for h in page.locator("table th").all()]
        assert set(COLUMNS) <= set(headers), headers
        assert all(repo in rows for repo in EXAMPLE_REPOS), sorted(rows)
        print("states on first look:", {r: rows[r]["State"] for r in EXAMPLE_REPOS})
        for name, sid in opened.items():
            assert rows[f"it/{name}"]["href"] == f"/cicd/sessions/{sid}", rows[f"it/{name}"]
            assert rows[f"it/{name}"]["Strategy"], rows[f"it/{name}"]
            assert "/" in rows[f"it/{name}"]["Attempt"], rows[f"it/{name}"]
        assert page.locator("a[href^='/cicd/sessions/']").count() >= len(EXAMPLE_REPOS)
        _shot(page, tmp_path, "sessions")

        # follow the lint-failure session's link
        sid = opened["lint-failure"]
        page.locator(f"a[href='/cicd/sessions/{sid}']").click()
        page.wait_for_url(f"**/cicd/sessions/{sid}")
        assert page.locator("h1").inner_text() == f"Session {sid}"
        assert [h.inner_text() for h in page.locator("h2").all()] == ["Timeline", "Report"]
        timeline_head = [h.inner_text().strip() for h in page.locator("table th").all()]
        assert {"Attempt", "Strategy", "Status"} <= set(timeline_head), timeline_head
        assert page.locator("pre").count() == 1
        assert page.get_by_role("link", name="All sessions").count() == 1

        # once it is over, the same page shows the attempt and the report
        final = airflow_env.wait(sid, timeout=600)
        page.reload()
        assert page.locator("table tr:has(td)").count() >= 1
        first = [c.inner_text() for c in page.locator("table tr:has(td)").first.locator("td").all()]
        assert first[0] == "1" and first[1] == final.attempt_history[0].strategy.value, first
        report = page.locator("pre").inner_text()
        assert report.strip() and "fixed" in report, report[:500]
        _shot(page, tmp_path, "session")

        # the Airflow UI's navigation has the entry, and it shows the sessions page
        page.goto(f"{base}/")
        page.get_by_role("button", name="Browse").click()
        entry = page.get_by_role("menuitem", name="CI/CD sessions")
        entry.wait_for(state="visible")
        assert entry.get_attribute("href") in ("/plugin/cicd-sessions", "/cicd/sessions")
        entry.click()
        iframe = page.locator("iframe")  # an external view: the page in an iframe of the UI
        iframe.first.wait_for(state="attached")
        assert (iframe.first.get_attribute("src") or "").endswith("/cicd/sessions")
        inner = page.frame_locator("iframe").first
        inner.locator("a", has_text="it/lint-failure").first.wait_for(state="visible")
        assert inner.locator("h1").inner_text() == "CI/CD orchestration sessions"
        assert _rows(inner)["it/lint-failure"]["State"] == "closed"
        _shot(page, tmp_path, "navigation")
    except BaseException:
        with contextlib.suppress(Exception):
            _shot(page, tmp_path, "failure")
        raise
    finally:
        context.close()


@pytest.mark.timeout(1500)
def test_metrics_page_in_a_browser(browser, airflow_env, opened, tmp_path):
    base = airflow_env.stack.url
    airflow_env.wait(opened["lint-failure"], timeout=900)  # a closed session to count
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(NAVIGATION_MS)
    page = context.new_page()
    try:
        resp = page.goto(f"{base}/cicd/metrics")
        assert resp is not None and resp.status in (401, 403), resp and resp.status
        assert "<svg" not in page.content()
        _login(page, base, airflow_env.stack.password)
        assert _wait_for_cookie(page, "_token")["value"]
        _check_metrics(page, base, tmp_path)
    except BaseException:
        with contextlib.suppress(Exception):
            _shot(page, tmp_path, "failure")
        raise
    finally:
        context.close()
