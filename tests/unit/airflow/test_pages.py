"""The sessions list is paginated (page size, previous/next links, the total), the summaries
are parsed again only for sessions saved since, and the Metrics page draws its charts."""

from __future__ import annotations

import datetime
import json
import re
import urllib.parse

import pytest
from cicd_devkit.builders import new_state

from cicd_orchestrator.airflow import pages, sessions_db
from cicd_orchestrator.constants import Outcome, Priority, SessionStatus
from cicd_orchestrator.serde import to_json_obj
from cicd_orchestrator.session import metrics

NOW = datetime.datetime(2026, 1, 10, tzinfo=datetime.UTC)


def _summaries(n: int) -> list[metrics.SessionSummary]:
    out = []
    for i in range(n):
        state = new_state()
        state.session_id = f"s{i:03d}"
        state.repository = f"acme/repo{i % 3}"
        state.start_time = (NOW - datetime.timedelta(hours=i)).isoformat()
        if i % 2:
            state.status, state.outcome = SessionStatus.CLOSED, Outcome.FIXED
        out.append(metrics.summarize(state))
    return out


def test_a_page_is_cut_from_the_sorted_filtered_sessions():
    listing = pages.select_sessions(_summaries(25), page_no=2, page_size=10)
    assert (listing.total, listing.page, listing.pages, len(listing.rows)) == (25, 2, 3, 10)
    everything = pages.select_sessions(_summaries(25), page_size=100).rows
    # open sessions first, the newest first among equals
    assert [s.closed for s in everything] == sorted(s.closed for s in everything)
    open_ids = [s.session_id for s in everything if not s.closed]
    assert open_ids == sorted(open_ids)
    assert listing.rows == everything[10:20]


def test_filters_and_pages_beyond_the_last():
    listing = pages.select_sessions(_summaries(25), repository="repo1", state="fixed", page_no=99)
    assert all(s.repository == "acme/repo1" and s.outcome is Outcome.FIXED for s in listing.rows)
    assert listing.page == listing.pages == 1
    empty = pages.select_sessions([], page_no=3)
    assert (empty.total, empty.page, empty.rows) == (0, 1, [])


def test_the_page_links_to_its_neighbours_and_keeps_the_filters():
    listing = pages.select_sessions(_summaries(25), repository="acme/", page_no=2, page_size=10)
    text = pages.render_sessions(listing, repository="acme/", now=NOW)
    links = {
        rel: urllib.parse.parse_qs(urllib.parse.urlsplit(href.replace("&amp;", "&")).query)
        for rel, href in re.findall(r"rel='(prev|next)' href='([^']*)'", text)
    }
    assert links["prev"]["page"] == ["1"] and links["next"]["page"] == ["3"]
    assert links["next"]["repository"] == ["acme/"] and links["next"]["page_size"] == ["10"]
    assert "11&ndash;20 of 25 session(s), page 2 of 3" in text
    assert text.count("<tr class=") == 10
    last = pages.render_sessions(pages.select_sessions(_summaries(25), page_no=3, page_size=10))
    assert "rel='next'" not in last and "rel='prev'" in last


def _row(state, stored: str | None = None):
    text = json.dumps(to_json_obj(state))
    reads = []

    def read() -> str:
        reads.append(state.session_id)
        return text

    return (sessions_db.SESSION_PREFIX + state.session_id, stored or text, read), reads


def test_the_cache_parses_a_session_again_only_when_its_stored_text_changed():
    cache = sessions_db.SummaryCache()
    first, first_reads = _row(new_state())
    other = new_state()
    other.session_id = "other"
    second, second_reads = _row(other)
    assert len(cache.summaries([first, second])) == 2
    assert len(cache.summaries([first, second])) == 2
    assert (first_reads, second_reads) == ([first[0][len("cicd_session__") :]], ["other"])
    other.priority = Priority.LOW
    changed, changed_reads = _row(other)
    (summary,) = [s for s in cache.summaries([first, changed]) if s.session_id == "other"]
    assert summary.priority is Priority.LOW and changed_reads == ["other"]
    # a deleted session leaves the cache; a broken one is left out, the others stay
    broken = ("cicd_session__broken", "x", lambda: "{not json")
    assert [s.session_id for s in cache.summaries([changed, broken])] == ["other"]


def test_the_metrics_page_draws_four_charts():
    figures = metrics.compute([s for s in _summaries(10)], NOW.date(), days=7)
    text = pages.render_metrics(figures, 7)
    assert text.count("<svg class='chart'") == 3  # no fixer used yet: "No data yet."
    assert "Fix rate per fixer</h2><p class='muted'>No data yet." in text
    assert "Sessions per day (last 7 days)" in text
    assert "href='/cicd/api/metrics?days=7'" in text
    assert "aria-current=page>Metrics" in text
    bars = re.findall(r"<rect class='bar'[^>]*height='([\d.]+)'", text)
    assert bars and all(float(h) >= 0 for h in bars)


@pytest.mark.parametrize(
    "seconds,shown", [(None, "-"), (42, "42s"), (125, "2m 5s"), (7260, "2h 1m")]
)
def test_durations_read_as_people_read_them(seconds, shown):
    assert pages._duration(seconds) == shown


def test_the_plugin_puts_both_pages_in_airflows_browse_menu():
    import runpy
    from pathlib import Path

    plugin_file = Path(__file__).resolve().parents[3] / "plugins" / "cicd_orchestrator_plugin.py"
    plugin = runpy.run_path(str(plugin_file))["CicdOrchestratorPlugin"]
    views = {v["name"]: v for v in plugin.external_views}
    assert {v["href"] for v in views.values()} == {"/cicd/sessions", "/cicd/metrics"}
    assert all(v["destination"] == "nav" and v["category"] == "browse" for v in views.values())
    routes = {r.path for r in plugin.fastapi_apps[0]["app"].routes}
    assert {"/sessions", "/sessions/{session_id}", "/metrics", "/api/metrics"} <= routes
