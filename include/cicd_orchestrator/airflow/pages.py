"""The HTML of the orchestrator's pages in Airflow's UI: the sessions list (paginated), one
session, and the Metrics page with its charts (inline SVG drawn here: no script, no CDN).

They are shown inside Airflow's UI (external views, in an iframe), so they take its look:
Airflow 3's palette (its brand blue, zinc greys, state colours), its type (Inter, then the
system fonts) and its light or dark mode as the browser asks. Every value of a session is
hostile text and goes through :func:`_e`; only http(s) URLs become links."""

from __future__ import annotations

import datetime
import html
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from cicd_orchestrator.constants import PRIORITY_WEIGHT, SessionStatus
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.session.metrics import Metrics, Rate, SessionSummary, parse_time

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

# Airflow 3's UI tokens (brand.600, black, zinc greys, green/red/cyan 600; dark: their 300s)
_STYLE = """
:root{--brand:oklch(.469 .084 257.657);--fg:oklch(.23185 .0323 266.44);--muted:#71717a;
--bg:#fff;--subtle:#fafafa;--border:#e4e4e7;--green:#16a34a;--red:#dc2626;--blue:#0891b2;
--amber:#d97706;--bar:oklch(.575 .08 257.759);color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--brand:oklch(.705 .066 256.378);--fg:#fafafa;
--muted:#a1a1aa;--bg:#111111;--subtle:#18181b;--border:#3f3f46;--green:#86efac;
--red:#fca5a5;--blue:#67e8f9;--amber:#fcd34d;--bar:oklch(.705 .066 256.378)}}
*{box-sizing:border-box}
body{font-family:Inter,-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;
font-size:14px;line-height:1.5;color:var(--fg);background:var(--bg);margin:0;padding:16px 24px}
h1{font-size:20px;font-weight:600;margin:0 0 4px}
h2{font-size:16px;font-weight:600;margin:24px 0 8px}
a{color:var(--brand);text-decoration:none}a:hover{text-decoration:underline}
nav.tabs{display:flex;gap:4px;border-bottom:1px solid var(--border);margin:8px 0 16px}
nav.tabs a{padding:8px 12px;color:var(--muted);border-bottom:2px solid transparent}
nav.tabs a[aria-current=page]{color:var(--fg);border-bottom-color:var(--brand);font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:var(--muted);background:var(--subtle);
border-bottom:1px solid var(--border);padding:8px}
td{border-bottom:1px solid var(--border);padding:8px;vertical-align:top}
tr:hover td{background:var(--subtle)}
.badge{display:inline-block;border-radius:9999px;padding:0 8px;font-size:12px;font-weight:500;
border:1px solid currentColor;white-space:nowrap}
.s-green{color:var(--green)}.s-red{color:var(--red)}.s-blue{color:var(--blue)}
.s-amber{color:var(--amber)}.s-grey{color:var(--muted)}
form.filters{display:flex;gap:8px;align-items:end;flex-wrap:wrap;margin-bottom:12px}
label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
input,button{font:inherit;border:1px solid var(--border);border-radius:6px;padding:4px 8px;
background:var(--bg);color:var(--fg)}
button{background:var(--brand);color:#fff;border-color:var(--brand);cursor:pointer}
.pager{display:flex;gap:12px;align-items:center;margin:12px 0;color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px}
.card,.chart-card{border:1px solid var(--border);border-radius:8px;padding:12px 16px;
background:var(--bg)}
.card .value{font-size:24px;font-weight:600}.card .label{color:var(--muted);font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px;
margin-top:16px;align-items:start}
.chart-card h2{margin:0 0 8px}svg.chart{width:100%;max-width:640px;height:auto;display:block}
svg.chart text{fill:var(--fg);font-size:12px}svg.chart .axis{fill:var(--muted)}
svg.chart rect.bar{fill:var(--bar)}svg.chart rect.track{fill:var(--subtle)}
pre{background:var(--subtle);border:1px solid var(--border);border-radius:6px;padding:12px;
white-space:pre-wrap;font-family:SFMono-Regular,Menlo,Monaco,Consolas,monospace;font-size:12px}
.muted{color:var(--muted)}
"""

_TABS = (("Sessions", "/cicd/sessions"), ("Metrics", "/cicd/metrics"))

_STATE_COLOUR = {
    "fixed": "s-green",
    "rerun_green": "s-green",
    "already_green": "s-green",
    "failed": "s-red",
    "escalated": "s-amber",
    "rolled_back": "s-amber",
    "running_attempt": "s-blue",
    "waiting_for_ci": "s-blue",
    "waiting_to_escalate": "s-amber",
}


def _e(value: object) -> str:
    """Any value of a session as page text (escaped, quotes included)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str, tab: str | None = None) -> str:
    tabs = "".join(
        f"<a href='{href}'{' aria-current=page' if name == tab else ''}>{name}</a>"
        for name, href in _TABS
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><nav class='tabs' aria-label='CI/CD orchestrator'>{tabs}</nav>"
        f"{body}</body></html>"
    )


def _badge(value: str) -> str:
    return f"<span class='badge {_STATE_COLOUR.get(value, 's-grey')}'>{_e(value)}</span>"


def _age(start: str | None, now: datetime.datetime) -> str:
    started = parse_time(start)
    if started is None:
        return "-"
    minutes = int((now - started).total_seconds() // 60)
    if minutes >= 24 * 60:
        return f"{minutes // (24 * 60)}d {minutes // 60 % 24}h"
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"


def _link(url: str) -> str:
    """A link when ``url`` is http(s), else its text only (no ``javascript:``, ``data:``...)."""
    label = _e(url.rsplit("/", 1)[-1] or url)
    if urllib.parse.urlsplit(url).scheme.lower() in ("http", "https"):
        return f"<a href='{_e(url)}' rel='noopener noreferrer' target='_blank'>{label}</a>"
    return label


def _links(items: Iterable[str]) -> str:
    return " ".join(_link(u) for u in items) or "-"


def _dag_run_links(dag_runs: Iterable[str]) -> str:
    out = []
    for item in dag_runs:
        dag_id, _, run_id = item.partition("/")
        href = f"/dags/{urllib.parse.quote(dag_id)}/runs/{urllib.parse.quote(run_id)}"
        label = dag_id.split("_")[2] if dag_id.count("_") > 2 else dag_id
        out.append(f"<a href='{_e(href)}' target='_top'>{_e(label)}</a>")
    return " ".join(out) or "-"


# --------------------------------------------------------------------------- sessions list
@dataclass(frozen=True)
class Listing:
    """One page of the filtered, sorted sessions."""

    rows: list[SessionSummary]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def select_sessions(
    summaries: list[SessionSummary],
    repository: str = "",
    state: str = "",
    page_no: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Listing:
    """Filter (a part of the repository's name; a status or an outcome), sort (open first,
    then by priority, then the newest) and cut one page (1-based; clamped to the last)."""
    page_size = min(max(1, page_size), MAX_PAGE_SIZE)
    rows = [
        s
        for s in summaries
        if (not repository or repository in s.repository)
        and (not state or state in (s.status.value, s.outcome.value))
    ]
    rows.sort(key=lambda s: s.start_time or "", reverse=True)
    rows.sort(key=lambda s: (s.status is SessionStatus.CLOSED, -PRIORITY_WEIGHT[s.priority]))
    total = len(rows)
    last = max(1, -(-total // page_size))
    page_no = min(max(1, page_no), last)
    start = (page_no - 1) * page_size
    return Listing(rows[start : start + page_size], total, page_no, page_size)


_COLUMNS = (
    "Provider",
    "Repository",
    "Branch",
    "Failed run",
    "Category",
    "Attempt",
    "Strategy",
    "State",
    "Outcome",
    "Priority",
    "Age",
    "DAG runs",
    "Pull requests",
    "Issues",
)


def _row(s: SessionSummary, now: datetime.datetime) -> str:
    run = _links([s.failed_run]) if s.failed_run else _e(s.pipeline_id)
    strategy = s.strategy.value if s.strategy else "-"
    return (
        f"<tr class='{_e(s.status.value)}'><td>{_e(s.provider)}</td>"
        f"<td><a href='/cicd/sessions/{_e(urllib.parse.quote(s.session_id))}'>"
        f"{_e(s.repository)}</a></td><td>{_e(s.branch)}</td><td>{run}</td>"
        f"<td>{_e(s.category.value)}</td><td>{_e(s.current_attempt)}/{_e(s.max_attempts)}</td>"
        f"<td>{_e(strategy)}</td><td>{_badge(s.status.value)}</td><td>{_badge(s.outcome.value)}</td>"
        f"<td>{_e(s.priority.value)}</td><td>{_e(_age(s.start_time, now))}</td>"
        f"<td>{_dag_run_links(s.dag_runs)}</td><td>{_links(s.pull_requests)}</td>"
        f"<td>{_links(s.issues)}</td></tr>"
    )


def _page_href(listing: Listing, page_no: int, repository: str, state: str) -> str:
    query: dict[str, str | int] = {"page": page_no, "page_size": listing.page_size}
    query.update({k: v for k, v in (("repository", repository), ("state", state)) if v})
    return "/cicd/sessions?" + urllib.parse.urlencode(query)


def _pager(listing: Listing, repository: str, state: str) -> str:
    first = (listing.page - 1) * listing.page_size + 1 if listing.total else 0
    last = first + len(listing.rows) - 1 if listing.rows else 0
    prev = (
        f"<a rel='prev' href='{_e(_page_href(listing, listing.page - 1, repository, state))}'>"
        "&larr; Previous</a>"
        if listing.page > 1
        else ""
    )
    nxt = (
        f"<a rel='next' href='{_e(_page_href(listing, listing.page + 1, repository, state))}'>"
        "Next &rarr;</a>"
        if listing.page < listing.pages
        else ""
    )
    return (
        f"<div class='pager'>{prev}<span class='count'>{first}&ndash;{last} of "
        f"{listing.total} session(s), page {listing.page} of {listing.pages}</span>{nxt}</div>"
    )


def render_sessions(
    listing: Listing, repository: str = "", state: str = "", now: datetime.datetime | None = None
) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    form = (
        "<form class='filters' method='get'>"
        f"<label>Repository<input name='repository' value='{_e(repository)}'></label>"
        f"<label>State or outcome<input name='state' value='{_e(state)}'></label>"
        f"<input type='hidden' name='page_size' value='{listing.page_size}'>"
        "<button>Filter</button></form>"
    )
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in _COLUMNS) + "</tr>"
    body = "".join(_row(s, now) for s in listing.rows)
    table = f"<table>{head}{body}</table>" if body else "<p class='muted'>No sessions.</p>"
    pager = _pager(listing, repository, state)
    return page("CI/CD orchestration sessions", f"{form}{pager}{table}{pager}", "Sessions")


def render_session(state: SessionState) -> str:
    timeline = []
    for rec in state.attempt_history:
        published = rec.published.kind.value if rec.published else "-"
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in rec.stage_timings.items())
        timeline.append(
            f"<tr><td>{_e(rec.attempt)}</td><td>{_e(rec.strategy.value)}</td>"
            f"<td>{_e(rec.started_at or '-')}</td><td>{_badge(rec.status.value)}</td>"
            f"<td>{_e(published)}</td><td>{_e(rec.ci_conclusion or '-')}</td>"
            f"<td>{_e(timings)}</td></tr>"
        )
    table = (
        "<table><tr><th>Attempt</th><th>Strategy</th><th>Started</th><th>Status</th>"
        "<th>Published</th><th>CI</th><th>Stages</th></tr>" + "".join(timeline) + "</table>"
    )
    facts = (
        f"<p><a href='/cicd/sessions'>All sessions</a> &middot; {_e(state.repository)} "
        f"&middot; {_e(state.branch)} &middot; {_badge(state.status.value)} "
        f"{_badge(state.outcome.value)}</p>"
    )
    body = f"{facts}<h2>Timeline</h2>{table}<h2>Report</h2><pre>{_e(state.report)}</pre>"
    return page(f"Session {state.session_id}", body, "Sessions")


# --------------------------------------------------------------------------- charts
_WIDTH = 560
_ROW = 26
_LABEL = 170


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def rate_chart(title: str, rates: dict[str, Rate]) -> str:
    """Horizontal bars: the share of green per key, with green/counted beside each."""
    if not rates:
        return _chart_card(title, "<p class='muted'>No data yet.</p>")
    track = _WIDTH - _LABEL - 90
    height = _ROW * len(rates) + 8
    parts = []
    for i, (key, rate) in enumerate(rates.items()):
        y = 4 + i * _ROW
        width = round(track * (rate.rate or 0), 1)
        parts.append(
            f"<text x='{_LABEL - 8}' y='{y + 16}' text-anchor='end'>{_e(key)}</text>"
            f"<rect class='track' x='{_LABEL}' y='{y + 3}' width='{track}' height='16' rx='3'/>"
            f"<rect class='bar' x='{_LABEL}' y='{y + 3}' width='{width}' height='16' rx='3'>"
            f"<title>{_e(key)}: {rate.green} of {rate.counted} green</title></rect>"
            f"<text x='{_LABEL + track + 8}' y='{y + 16}'>{_percent(rate.rate)} "
            f"({rate.green}/{rate.counted})</text>"
        )
    return _chart_card(title, _svg(title, height, "".join(parts)))


def column_chart(title: str, points: list[tuple[str, int]], every: int = 1) -> str:
    """Vertical bars of counts, a label under every ``every``-th bar."""
    if not points or not any(n for _, n in points):
        return _chart_card(title, "<p class='muted'>No data yet.</p>")
    top = max(n for _, n in points)
    plot_h, base, left = 150, 170, 36
    step = (_WIDTH - left - 8) / len(points)
    parts = [
        f"<text class='axis' x='{left - 6}' y='24' text-anchor='end'>{top}</text>",
        f"<text class='axis' x='{left - 6}' y='{base}' text-anchor='end'>0</text>",
    ]
    for i, (label, n) in enumerate(points):
        h = round(plot_h * n / top, 1)
        x = round(left + i * step + step * 0.15, 1)
        w = round(step * 0.7, 1)
        parts.append(
            f"<rect class='bar' x='{x}' y='{base - h}' width='{w}' height='{h}' rx='2'>"
            f"<title>{_e(label)}: {n}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f"<text class='axis' x='{round(x + w / 2, 1)}' y='{base + 16}' "
                f"text-anchor='middle'>{_e(label)}</text>"
            )
    return _chart_card(title, _svg(title, base + 24, "".join(parts)))


def _svg(title: str, height: float, inner: str) -> str:
    return (
        f"<svg class='chart' role='img' aria-label='{_e(title)}' viewBox='0 0 {_WIDTH} {height}' "
        f"width='{_WIDTH}' height='{height}' xmlns='http://www.w3.org/2000/svg'>{inner}</svg>"
    )


def _chart_card(title: str, inner: str) -> str:
    return f"<section class='chart-card'><h2>{_e(title)}</h2>{inner}</section>"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60}h {minutes % 60}m"
    return f"{minutes}m {int(seconds % 60)}s" if minutes else f"{seconds:.0f}s"


def render_metrics(m: Metrics, days: int) -> str:
    cards = (
        ("Sessions", f"{m.sessions}", f"{m.open} open, {m.closed} closed"),
        ("Fix rate", _percent(m.fix_rate.rate), f"{m.fix_rate.green} of {m.fix_rate.counted}"),
        (
            "Median time to green",
            _duration(m.median_time_to_green),
            f"over {m.time_to_green_sessions} green session(s)",
        ),
        (
            "Attempts used",
            f"{sum(k * v for k, v in m.attempts_used.items())}",
            "by closed sessions",
        ),
    )
    kpis = "".join(
        f"<div class='card'><div class='label'>{_e(label)}</div>"
        f"<div class='value'>{_e(value)}</div><div class='label'>{_e(note)}</div></div>"
        for label, value, note in cards
    )
    per_day = [(day[5:], n) for day, n in m.per_day]
    charts = (
        rate_chart("Fix rate per category", m.by_category)
        + rate_chart("Fix rate per fixer", m.by_fixer)
        + column_chart("Attempts used", [(str(k), v) for k, v in m.attempts_used.items()])
        + column_chart(f"Sessions per day (last {days} days)", per_day, max(1, len(per_day) // 8))
    )
    body = (
        f"<div class='cards'>{kpis}</div><div class='charts'>{charts}</div>"
        f"<p class='muted'>The same figures as JSON: "
        f"<a href='/cicd/api/metrics?days={days}'>/cicd/api/metrics</a></p>"
    )
    return page("CI/CD orchestration metrics", body, "Metrics")
