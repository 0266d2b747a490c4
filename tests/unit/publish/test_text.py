"""Bodies are data: fences no log line closes, no mention, no HTML, a cap with a link."""

from __future__ import annotations

from markdown_it import MarkdownIt

from cicd_orchestrator.publish.text import ZWJ, fence, report_link, safe_markdown, safe_title

LINK = "https://airflow.example.com/cicd/sessions/s1"
HOSTILE = "ok\n```\n@org/team see <img src=x onerror=alert(1)>\n~~~~\n````` x"
RENDER = MarkdownIt("commonmark")


def test_a_fence_is_longer_than_any_backtick_run_inside() -> None:
    assert fence("plain").startswith("```\n") and fence("plain").endswith("\n```")
    block = fence(HOSTILE, "text")
    assert block.startswith("``````text\n") and block.endswith("\n``````")
    html = RENDER.render(block)
    assert html.count("<pre>") == 1 and "&lt;img" in html and "<img" not in html


def test_prose_pings_nobody_and_carries_no_html() -> None:
    text = "Hello @alice and @org/team <img src=x onerror=alert(1)> & ![x](http://t/p.png)"
    out = safe_markdown(text, limit=10_000, full_report=LINK)
    html = RENDER.render(out)
    assert "<img" not in html and "@alice" not in html and "@org/team" not in html
    assert f"@{ZWJ}alice" in out and f"@{ZWJ}org/team" in out and "&amp;" in out


def test_fenced_blocks_are_re_fenced_and_kept_whole() -> None:
    doc = "Intro @bob\n\n" + fence(HOSTILE) + "\n\nafter <b>x</b>\n  ```\n  a\n  ```"
    out = safe_markdown(doc, limit=10_000, full_report=LINK)
    html = RENDER.render(out)
    assert html.count("<pre>") == 2 and "<b>" not in html and "@bob" not in html
    code = html.split("<pre><code>")[1].split("</code></pre>")[0]
    assert "@org/team" in code and "````` x" in code  # shown as text, inside one block


def test_an_unclosed_fence_is_closed() -> None:
    out = safe_markdown("a\n```\n<script>x</script>", limit=1_000, full_report=LINK)
    assert out.endswith("\n```") and "<script>" not in RENDER.render(out)


def test_a_long_text_is_cut_under_the_limit_with_a_link() -> None:
    log = "\n".join(f"line {i} @org/team <img src=x> ``` " for i in range(20_000))
    doc = "# Report\n\n" + fence(log) + "\n\nthe end"
    out = safe_markdown(doc, limit=65_536 - 2_000, full_report=LINK)
    assert len(out) <= 65_536 - 2_000
    assert "Cut to fit" in out and LINK in out
    html = RENDER.render(out)
    assert html.count("<pre>") == 1 and "<img" not in html
    one_line = safe_markdown("x" * 300_000, limit=5_000, full_report=LINK)
    assert len(one_line) <= 5_000 and LINK in one_line


def test_without_a_base_url_the_session_is_named() -> None:
    assert report_link("https://af.example.com/", "s1") == "https://af.example.com/cicd/sessions/s1"
    where = report_link(None, "s1")
    assert "s1" in where and "/cicd/sessions" in where


def test_titles_are_one_short_line_without_mentions() -> None:
    title = safe_title("Fix @org/team\nof " + "x" * 500)
    assert "\n" not in title and len(title) <= 200 and f"@{ZWJ}org" in title
