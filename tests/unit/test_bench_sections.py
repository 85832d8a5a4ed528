"""BENCHMARKS.md holds one section per benchmark: each benchmark rewrites its own and keeps the others."""

from __future__ import annotations

from bench.common import write_section

STRIPE = "# Benchmarks: Stripe extraction\n\n| a | b |\n\n```sh\n# = a shell comment, not a heading\nmake bench\n```\n"
PUSH = "# Benchmarks: reverse ETL\n\nfirst figures\n"


def test_each_benchmark_replaces_its_own_section_and_keeps_the_others(tmp_path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_section(path, "# Benchmarks: Stripe extraction", STRIPE)
    write_section(path, "# Benchmarks: reverse ETL", PUSH)
    assert path.read_text() == STRIPE + "\n" + PUSH

    write_section(path, "# Benchmarks: Stripe extraction", STRIPE.replace("| a | b |", "| c | d |"))
    text = path.read_text()
    assert "| c | d |" in text and "| a | b |" not in text
    assert text.count("# = a shell comment") == 1 and text.endswith(PUSH)

    write_section(path, "# Benchmarks: reverse ETL", PUSH.replace("first", "second"))
    assert path.read_text().endswith("second figures\n") and "first figures" not in path.read_text()
    assert path.read_text().startswith("# Benchmarks: Stripe extraction\n\n| c | d |")
