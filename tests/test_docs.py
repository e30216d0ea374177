"""Every Python block in README.md and docs/*.md runs as written, or says why it cannot.

A page's blocks run in order in one namespace (a later block may use what an earlier one made),
in a temporary folder that holds the files a user would bring: a CSV folder `my_prices/`, a scores
file `my_scores.csv` and a membership file `sp500_history.csv`. A block preceded by
`<!-- no-run: reason -->` is skipped and its reason must say what it needs (the network).
The README's marked example runs in tests/test_readme.py with its own assertions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

BLOCK = re.compile(r"(<!--\s*(?P<marker>[^>]*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.S)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    page: str
    line: int
    code: str
    no_run: str | None  # the reason it cannot run here
    elsewhere: str | None  # the test that runs it instead


def page_blocks(path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for m in BLOCK.finditer(text):
        marker = (m.group("marker") or "").strip()
        no_run = marker.split(":", 1)[1].strip() if marker.startswith("no-run:") else None
        elsewhere = "tests/test_readme.py" if marker == "readme-example" else None
        line = text[: m.start("code")].count("\n") + 1
        blocks.append(Block(path.relative_to(ROOT).as_posix(), line, m.group("code"), no_run, elsewhere))
    return blocks


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in page_blocks(page)]


def test_every_block_that_does_not_run_says_why():
    blocks = all_blocks()
    assert len(blocks) >= 15, "the docs lost their examples"
    for b in blocks:
        if b.no_run is not None:
            assert "network" in b.no_run, f"{b.page}:{b.line}: a block may skip only for the network, not {b.no_run!r}"
    assert sum(b.no_run is None for b in blocks) >= len(blocks) - 3


def write_user_files(folder) -> None:
    """The files the docs' examples read: what a user would have at hand."""
    from feeds import load_embedded

    prices, bench = load_embedded(start="2015-01-01")
    prices_dir = folder / "my_prices"
    prices_dir.mkdir()
    for ticker in ("AAPL", "MSFT", "XOM"):
        prices.close[ticker].rename("Close").rename_axis("Date").to_csv(
            prices_dir / f"{ticker}.csv", float_format="%.6f"
        )
    bench.rename("Close").rename_axis("Date").to_csv(prices_dir / "SPY.csv", float_format="%.6f")
    momentum = prices.close.loc["2021-01-01":].pct_change(20).rank(axis=1, pct=True) * 2 - 1
    momentum.rename_axis("Date").to_csv(folder / "my_scores.csv", date_format="%Y-%m-%d", float_format="%.6f")
    rows = [f"{t},1990-01-01," for t in prices.tickers] + ["TSLA,2020-12-21,"]
    (folder / "sp500_history.csv").write_text("ticker,start,end\n" + "\n".join(rows) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_blocks_run_as_written(page, tmp_path, monkeypatch, capsys):
    blocks = page_blocks(ROOT / page)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    write_user_files(tmp_path)
    namespace = {"__name__": "__docs__"}
    ran = 0
    for b in blocks:
        if b.no_run or b.elsewhere:
            continue
        try:
            exec(compile(b.code, f"{b.page}:{b.line}", "exec"), namespace)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"{b.page}:{b.line}: the example fails: {exc!r}") from exc
        ran += 1
    skipped = [f"{b.page}:{b.line} ({b.no_run or 'runs in ' + b.elsewhere})" for b in blocks if b.no_run or b.elsewhere]
    with capsys.disabled():
        print(f"\n{page}: ran {ran} of {len(blocks)} Python blocks; not here: {', '.join(skipped) or 'none'}")
