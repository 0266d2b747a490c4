from __future__ import annotations

from cicd_orchestrator.logs.normalize import (
    clean_line,
    line_hash,
    normalize_line,
    signature,
    signature_text,
    strip_ansi,
)


def test_strip_ansi_and_prefixes() -> None:
    assert strip_ansi("\x1b[1;31mERROR\x1b[m] x") == "ERROR] x"
    assert clean_line("2024-05-01T10:00:00.1234567Z ##[error]boom") == "##[error]boom"
    assert clean_line("build\tRun tests\t2024-05-01T10:00:00.1234567Z hello") == "hello"
    assert clean_line("[2024-05-01T10:00:00.123Z] jenkins line") == "jenkins line"


def test_normalize_replaces_what_changes_between_runs() -> None:
    a = normalize_line(
        "2024-05-01T10:00:00Z Finished at 2024-05-01T10:00:03+02:00 in 4.465 s, "
        "sha 4e8932e579d2e085ea2d9e6e88035d1ad0ad16a6 id 8c1f9a2e-6f3b-4c1d-9e7a-0b1c2d3e4f50 "
        "tmp /tmp/dIBV1K0J1d/x.txt run 123456789 took 12ms"
    )
    b = normalize_line(
        "2024-06-02T11:11:11Z Finished at 2024-06-02T11:11:14+02:00 in 9.1 s, "
        "sha 0123456789abcdef0123456789abcdef01234567 id 00000000-1111-2222-3333-444444444444 "
        "tmp /tmp/Zq81/x.txt run 987654321 took 7ms"
    )
    assert a == b
    assert "<HEX>" in a and "<UUID>" in a and "<TMP>" in a and "<DUR>" in a


def test_normalize_keeps_counts_that_matter() -> None:
    assert normalize_line("Tests run: 10, Failures: 1") != normalize_line(
        "Tests run: 10, Failures: 0"
    )


def test_signature_is_stable_across_paths_line_numbers_and_timestamps() -> None:
    one = signature(['  File "/home/runner/work/a/src/x.py", line 7', "SyntaxError: expected ':'"])
    two = signature(['  File "/tmp/checkout/src/x.py", line 9', "SyntaxError: expected ':'"])
    assert one == two and len(one) == 16
    assert signature(["SyntaxError: invalid syntax"]) != one
    assert (
        signature_text("[ERROR] /a/b/Foo.java:[12,5] cannot find symbol")
        == "Foo.java:[N,N] cannot find symbol"
    )


def test_line_hash_ignores_timestamps() -> None:
    assert line_hash("2024-05-01T10:00:00.1Z hello 12:00:01") == line_hash(
        "2025-01-01T00:00:00.9Z hello 13:14:15"
    )
