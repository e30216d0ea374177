"""Variant sweeps: the variants file, the selection and holdout periods, the comparison,
sequential == processes == Ray, broken variants reported, a variant's metrics equal to the same run
done alone with the LSTM indicator, and a sweep on seen scores refused before it writes anything."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from jobs import sweep
from tests.sweep_common import SWEEP_TOML
from tests.sweep_common import write_toml as _write


@pytest.fixture(scope="module")
def market(embedded):
    from jobs.market import MarketData

    prices, bench = embedded
    return MarketData(prices, bench)


@pytest.fixture(scope="module")
def sequential(tiny_model, market, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seq")
    path = _write(tmp, SWEEP_TOML)
    result = sweep.run_sweep(
        path,
        out_root=tmp / "results",
        model_for=lambda cfg, data: tiny_model,
        data=market,
        cache_dir=tmp / "cache",
        progress=None,
        engine="cerebro",
    )
    return path, tmp, result


# ----------------------------------------------------------------------------- the variants file
def test_grid_is_every_combination_with_readable_names():
    variants = sweep.grid_variants({"top_k": [3, 5, 10], "entry_threshold": [0.1, 0.2], "model": {"seed": [0, 1]}})
    assert len(variants) == 12
    names = [v.name for v in variants]
    assert len(set(names)) == 12 and "top_k=3_entry_threshold=0.1_model.seed=0" in names
    v = variants[names.index("top_k=10_entry_threshold=0.2_model.seed=1")]
    assert v.overrides == {"strategy": {"top_k": 10, "entry_threshold": 0.2}, "model": {"seed": 1}}


def test_list_entries_split_strategy_and_model_keys():
    [v] = sweep.list_variants([{"name": "s1", "top_k": 3, "model": {"seed": 1}}])
    assert v.overrides == {"strategy": {"top_k": 3}, "model": {"seed": 1}}
    assert sweep.flat_params(v.overrides) == {"top_k": 3, "model.seed": 1}


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "no variants"),
        ({"grid": {"top_k": 3}}, "non-empty list"),
        ({"list": [{"top_k": 3}]}, "needs name"),
        ({"list": [{"name": "a"}, {"name": "a"}]}, "unique"),
        ({"list": [{"name": "../escape"}]}, "plain folder name"),
        ({"list": [{"name": "d", "data": {"source": "csv"}}]}, "cannot vary"),
        ({"grids": {}}, "no variants"),
    ],
)
def test_bad_variant_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        sweep.expand_variants(spec)


def test_a_misspelt_key_breaks_only_its_variant(tmp_path):
    path = _write(
        tmp_path,
        'base = "default"\n[[variants.list]]\nname = "ok"\ntop_k = 3\n[[variants.list]]\nname = "typo"\ntopk = 3\n',
    )
    base, variants = sweep.load_sweep(path)
    ok, typo = variants
    assert ok.error is None and ok.config["strategy"]["top_k"] == 3 and ok.config["name"] == "ok"
    assert "unknown config key 'strategy.topk'" in typo.error and "variant 'typo'" in typo.error


def test_periods_from_the_file_and_the_command_line_and_their_errors(tmp_path):
    base, _ = sweep.load_sweep(_write(tmp_path, SWEEP_TOML))
    periods = sweep.sweep_periods(base)
    assert periods.labels("selection") == ("2021-07-01", "2021-12-31")
    assert periods.labels("holdout") == ("2022-07-01", "2022-12-31")
    default, _ = sweep.load_sweep(_write(tmp_path, 'base = "default"\n[variants.grid]\ntop_k = [3]\n', "d.toml"))
    assert sweep.sweep_periods(default).labels("selection") == ("2013-01-01", "2016-12-31")
    assert sweep.sweep_periods(default).labels("holdout") == ("2017-01-01", "2022-12-31")
    overlap = {"selection": sweep.parse_period("2021-07-01,2022-09-30", "--selection")}
    base, _ = sweep.load_sweep(_write(tmp_path, SWEEP_TOML), overrides=overlap)
    assert base["selection"]["selection_end"] == "2022-09-30"
    with pytest.raises(ConfigError, match="overlaps the holdout period"):
        sweep.sweep_periods(base)
    with pytest.raises(ConfigError, match="--holdout 2017-01-01: give two dates START,END"):
        sweep.parse_period("2017-01-01", "--holdout")
    with pytest.raises(ConfigError, match="selection.holdout_end = 'soon' is not a date"):
        sweep.sweep_periods({"selection": {**base["selection"], "holdout_end": "soon"}})
    with pytest.raises(ConfigError, match="unknown config key 'selection.select_start'"):
        sweep.load_sweep(
            _write(tmp_path, '[selection]\nselect_start = "2013-01-01"\n[variants.grid]\ntop_k = [3]\n', "typo.toml")
        )


# ----------------------------------------------------------------------------- a sweep
@pytest.mark.slow
def test_sweep_writes_each_variant_and_the_comparison(sequential):
    path, tmp, result = sequential
    out = tmp / "results" / "mysweep"
    assert result.out_dir == out and result.inference_runs == 2 and result.models == 1  # one per period
    for name in ("top_k=3", "top_k=5", "slow-review"):
        for folder, period in ((out / name, "2022"), (out / name / "selection", "2021")):  # holdout, selection
            files = {p.name for p in folder.iterdir()}
            assert {"tearsheet.html", "trades.csv", "metrics.json", "equity.csv"} <= files, name
            assert json.loads((folder / "metrics.json").read_text())["start"].startswith(period)
    assert (out / "equity_curves.png").stat().st_size > 10_000
    table = pd.read_csv(out / "comparison.csv")
    ok = table[table.status == "ok"]
    # ranked on the selection period only: best selection Sharpe first, ranks 1..n, the top is chosen
    assert list(ok["variant"]) == list(ok.sort_values("selection_sharpe", ascending=False)["variant"])
    assert list(ok["selection_rank"]) == [1, 2, 3] and list(ok["chosen"]) == [True, False, False]
    assert list(ok.sort_values("holdout_sharpe", ascending=False)["holdout_rank"]) == [1, 2, 3]
    assert table["variant"].iloc[-1] == "broken" and table["status"].iloc[-1] == "error"
    # the broken variant is named with the strategy's ConfigError text, the others are whole
    assert "ConfigError" in table["error"].iloc[-1] and "top_k" in table["error"].iloc[-1]
    assert "top_k" in (out / "broken" / "error.txt").read_text()
    for _, row in ok.iterrows():  # each period's columns are that period's metrics.json
        for prefix, folder in (("holdout", out / row["variant"]), ("selection", out / row["variant"] / "selection")):
            metrics = json.loads((folder / "metrics.json").read_text())
            assert row[f"{prefix}_sharpe"] == pytest.approx(metrics["sharpe"], rel=1e-5)  # from float32 returns
            assert row[f"{prefix}_total_return"] == pytest.approx(metrics["total_return"], rel=1e-12)
            assert row[f"{prefix}_n_trades"] == metrics["n_trades"] > 0
    md = (out / "comparison.md").read_text()
    assert "## Broken variants" in md and "**broken**" in md and "top_k=3" in md
    assert "## Selection: chosen on the selection period, judged on the holdout" in md
    assert result.report.verdict[1:] in md and "equal-weight" in md and "Spearman rank correlation" in md


@pytest.mark.slow
def test_the_chosen_variant_reports_what_cost_breaks_it(sequential, capsys):
    """Its holdout folder: scores.csv, cost_sensitivity.png and the cost table in metrics.json,
    whose row at the variant's 5 bp is the variant's own run; the printed summary has its line."""
    from strategies.cost_sensitivity import summary_line

    _, tmp, result = sequential
    chosen = result.report.summary["chosen"]["name"]
    folder = tmp / "results" / "mysweep" / chosen
    assert {"scores.csv", "cost_sensitivity.png"} <= {p.name for p in folder.iterdir()}
    metrics = json.loads((folder / "metrics.json").read_text())
    own = next(row for row in metrics["cost_sensitivity"] if row["cost_bp"] == 5.0)
    assert own["sharpe"] == pytest.approx(metrics["sharpe"], rel=1e-9) and own["n_trades"] == metrics["n_trades"]
    line = summary_line(metrics["cost_sensitivity"], metrics["breakeven_cost"], metrics["turnover"])
    assert sweep.chosen_cost_line(result) == line
    sweep.print_comparison(result)
    assert f"  chosen, holdout: {line}" in capsys.readouterr().out.splitlines()


@pytest.mark.slow
def test_comparison_csv_and_selection_json(sequential):
    path, tmp, result = sequential
    out = tmp / "results" / "mysweep"
    table = pd.read_csv(out / "comparison.csv")
    for column in (
        "variant",
        "status",
        "error",
        "params",
        "selection_sharpe",
        "holdout_sharpe",
        "selection_rank",
        "holdout_rank",
        "chosen",
    ):
        assert column in table.columns, column
    for metric in (
        "total_return",
        "cagr",
        "volatility",
        "max_drawdown",
        "n_trades",
        "win_rate",
        "turnover",
        "psr",
        "universe_ew_sharpe",
    ):
        assert f"selection_{metric}" in table.columns and f"holdout_{metric}" in table.columns, metric
    assert "sharpe" not in table.columns  # a bare Sharpe would not say which period
    summary = json.loads((out / "selection.json").read_text())
    assert {
        "periods",
        "n_trials",
        "selection_sharpe_variance_daily",
        "selection_sharpe_variance_annualised",
        "expected_max_sharpe_annualised",
        "chosen",
        "excess",
        "rank_correlation_spearman",
        "pbo",
        "verdict",
        "variants",
        "yardstick",
        "engine",
        "confirmed_in_cerebro",
    } <= set(summary)
    assert summary["periods"]["selection"] == ["2021-07-01", "2021-12-31"]
    assert summary["periods"]["holdout"] == ["2022-07-01", "2022-12-31"]
    assert summary["n_trials"] == 3 and summary["engine"] == "cerebro"
    assert summary["excess"]["over"] == "equal-weight universe" and "equal-weight universe" in summary["verdict"]
    chosen = table[table["chosen"].eq(True)].iloc[0]
    assert summary["chosen"]["name"] == chosen["variant"] == result.report.chosen
    assert summary["chosen"]["holdout_sharpe"] == pytest.approx(chosen["holdout_sharpe"])
    assert 0 <= summary["chosen"]["deflated_sharpe"] <= 1 and 0 <= summary["pbo"]["pbo"] <= 1
    assert (out / "selection.png").stat().st_size > 5_000


@pytest.mark.slow
def test_a_variant_equals_the_same_run_alone_with_the_lstm_indicator(sequential, tiny_model, market, tmp_path):
    """What run_backtest.py does for one config (jobs.backtest.run with the LSTM indicator) gives the
    very metrics, trades and equity of that variant in the sweep."""
    from jobs.backtest import run

    path, tmp, result = sequential
    _, variants = sweep.load_sweep(path)
    variant = next(v for v in variants if v.name == "slow-review")
    holdout = sweep.period_config(variant.config, result.periods.holdout)
    alone = run(holdout, tmp_path / "alone", progress=False, data=market, model=tiny_model)
    out = tmp / "results" / "mysweep" / "slow-review"
    assert json.loads((out / "metrics.json").read_text()) == json.loads(
        (tmp_path / "alone" / "metrics.json").read_text()
    )
    assert result.outcomes["slow-review"].metrics == alone.metrics
    assert (out / "trades.csv").read_text() == (tmp_path / "alone" / "trades.csv").read_text()
    assert (out / "equity.csv").read_text() == (tmp_path / "alone" / "equity.csv").read_text()


def _subset(path, tmp, names):
    """The sweep file cut down to some of its variants (same period, so the same cached scores)."""
    text = path.read_text().split("[variants.grid]")[0]
    grid = [n for n in names if n.startswith("top_k=")]
    if grid:
        text += "[variants.grid]\ntop_k = [" + ", ".join(n.split("=")[1] for n in grid) + "]\n"
    if "broken" in names:
        text += '[[variants.list]]\nname = "broken"\ntop_k = 0\n'
    if "slow-review" in names:
        text += '[[variants.list]]\nname = "slow-review"\nreview_days = 14\nentry_threshold = 0.1\n'
    return _write(tmp, text)


@pytest.mark.slow
def test_a_second_sweep_reads_the_score_cache(sequential, tiny_model, market, tmp_path):
    path, tmp, first = sequential
    again = sweep.run_sweep(
        _subset(path, tmp_path, ["slow-review"]),
        out_root=tmp_path / "again",
        model_for=lambda cfg, data: tiny_model,
        data=market,
        cache_dir=tmp / "cache",
        progress=None,
        engine="cerebro",
    )
    assert again.inference_runs == 0
    assert again.outcomes["slow-review"].metrics == first.outcomes["slow-review"].metrics


@pytest.mark.slow
def test_local_processes_give_the_sequential_metrics(sequential, tiny_model, market, tmp_path):
    path, tmp, first = sequential
    names = ["top_k=3", "top_k=5", "broken"]
    result = sweep.run_sweep(
        _subset(path, tmp_path, names),
        out_root=tmp_path / "procs",
        mode="processes",
        workers=2,
        model_for=lambda cfg, data: tiny_model,
        data=market,
        cache_dir=tmp / "cache",
        progress=None,
        engine="cerebro",
    )
    assert sorted(result.outcomes) == sorted(names)
    for name in names:
        assert result.outcomes[name].metrics == first.outcomes[name].metrics, name
        assert result.outcomes[name].error == first.outcomes[name].error
    assert (tmp_path / "procs" / "mysweep" / "top_k=3" / "trades.csv").read_bytes() == (
        tmp / "results" / "mysweep" / "top_k=3" / "trades.csv"
    ).read_bytes()


@pytest.mark.slow
def test_local_ray_gives_the_sequential_metrics(sequential, tiny_model, market, tmp_path):
    """Two workers, three variants: an ordinary one, one with other strategy params and a broken
    one (top_k=5 would only repeat top_k=3's path, at two more Cerebro runs and tearsheets)."""
    pytest.importorskip("ray")
    path, tmp, first = sequential
    names = ["top_k=3", "slow-review", "broken"]
    t0 = time.perf_counter()
    result = sweep.run_sweep(
        _subset(path, tmp_path, names),
        out_root=tmp_path / "ray",
        mode="ray",
        workers=2,
        model_for=lambda cfg, data: tiny_model,
        data=market,
        cache_dir=tmp / "cache",
        progress=None,
        engine="cerebro",
    )
    print(f"ray sweep {time.perf_counter() - t0:.1f}s")
    assert sorted(result.outcomes) == sorted(names)
    for name in names:
        assert result.outcomes[name].metrics == first.outcomes[name].metrics, name
        assert (result.outcomes[name].error is None) == (first.outcomes[name].error is None)
    assert "top_k" in result.outcomes["broken"].error
    table = pd.read_csv(tmp_path / "ray" / "mysweep" / "comparison.csv")
    assert table.set_index("variant")["status"].to_dict() == {"top_k=3": "ok", "slow-review": "ok", "broken": "error"}


# ----------------------------------------------------------------------------- the vector engine
@pytest.mark.slow
def test_vector_sweep_screens_all_and_confirms_the_best_in_cerebro(sequential, tiny_model, market, tmp_path):
    path, tmp, cerebro = sequential
    result = sweep.run_sweep(
        path,
        out_root=tmp_path / "vec",
        model_for=lambda cfg, data: tiny_model,
        data=market,
        cache_dir=tmp / "cache",
        progress=None,
        confirm=2,
    )
    out = tmp_path / "vec" / "mysweep"
    assert result.engine == "vector" and len(result.confirmed) == 2
    # every working variant, both periods: the vector metrics equal the full Cerebro sweep's, key for key
    pairs = ((result.outcomes, cerebro.outcomes), (result.selection_outcomes, cerebro.selection_outcomes))
    for outcomes, theirs in pairs:
        for name, outcome in theirs.items():
            if outcome.error is None:
                assert sweep.metrics_mismatch(outcomes[name].metrics, outcome.metrics) is None, name
            else:
                assert outcomes[name].error is not None
    # the same selection table from either engine (returns: float32 from the vector engine and from equity.csv)
    ours, theirs = result.report.table, cerebro.report.table
    assert list(ours["name"]) == list(theirs["name"]) and list(ours["holdout_rank"]) == list(theirs["holdout_rank"])
    for column in ("selection_sharpe", "holdout_sharpe"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-6)
    assert result.report.summary["verdict"] == cerebro.report.summary["verdict"]
    # the confirmed ones are the two best by selection rank, replayed on the holdout with every report
    ok = [r["variant"] for r in cerebro.rows if r["status"] == "ok"]
    assert result.confirmed == ok[:2] == list(cerebro.report.table["name"][:2])
    for name in result.confirmed:
        assert {"tearsheet.html", "trades.csv", "metrics.json"} <= {p.name for p in (out / name).iterdir()}
        assert json.loads((out / name / "metrics.json").read_text())["start"].startswith("2022")
    assert not (out / ok[2]).exists() and (out / "broken" / "error.txt").exists()
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table["variant"]) == sorted(cerebro.outcomes)
    assert (out / "equity_curves.png").stat().st_size > 10_000
    assert json.loads((out / "selection.json").read_text())["confirmed_in_cerebro"] == {
        "period": "holdout",
        "variants": result.confirmed,
    }
    # the returns matrix: float32, one column per working variant, both periods, any date range
    returns = result.returns
    assert returns.values.dtype.name == "float32" and sorted(returns.names) == sorted(ok)
    assert returns.dates[0].year == 2021 and returns.dates[-1].year == 2022
    part = returns.matrix("2022-07-01", "2022-09-30")
    assert part.index.min() >= pd.Timestamp("2022-07-01") and part.index.max() <= pd.Timestamp("2022-09-30")
    equity = pd.read_csv(out / ok[0] / "equity.csv", index_col="date", parse_dates=True)["value"]
    rebuilt = returns.equity(ok[0], 100_000.0, "2022-07-01", "2022-12-31")
    assert rebuilt.to_numpy() == pytest.approx(equity.to_numpy(), rel=1e-5)  # float32 returns


def test_the_ranking_uses_the_selection_period_only(tiny_model, market, tmp_path, monkeypatch):
    """Make the selection's last variant the best of the holdout by far: it is still not chosen. Make
    it the best of the selection instead: it is chosen, whatever its holdout. Against the same
    vector sweep unchanged (not the `sequential` fixture, so the quick run keeps this guard)."""
    path = _write(tmp_path, SWEEP_TOML)
    common = dict(
        model_for=lambda cfg, data: tiny_model, data=market, cache_dir=tmp_path / "cache", progress=None, confirm=0
    )
    plain = sweep.run_sweep(path, out_root=tmp_path / "plain", **common)
    order = list(plain.report.table["name"])
    last = order[-1]
    real = sweep.run_vector_chunk

    def boost(period_year):
        def chunk(tasks, panels):
            out = []
            for name, m, r, e in real(tasks, panels):
                year = panels[next(t.panel_key for t in tasks if t.name == name)][0].dates[0].year
                if name == last and year == period_year:
                    r = r + np.float32(0.01)  # +1 % a day
                out.append((name, m, r, e))
            return out

        return chunk

    monkeypatch.setattr(sweep.runners, "run_vector_chunk", boost(2022))
    great_holdout = sweep.run_sweep(path, out_root=tmp_path / "h", **common)
    table = great_holdout.report.table.set_index("name")
    assert great_holdout.report.chosen == order[0] != last
    assert table.loc[last, "holdout_rank"] == 1 and table.loc[last, "selection_rank"] == len(order)
    assert list(great_holdout.report.table["name"]) == order  # the selection ranking did not move

    monkeypatch.setattr(sweep.runners, "run_vector_chunk", boost(2021))
    great_selection = sweep.run_sweep(path, out_root=tmp_path / "s", **common)
    assert great_selection.report.chosen == last
    unboosted = plain.report.table.set_index("name")["holdout_sharpe"]
    np.testing.assert_allclose(
        great_selection.report.table.set_index("name")["holdout_sharpe"][unboosted.index], unboosted, rtol=1e-6
    )
    csv = pd.read_csv(tmp_path / "s" / "mysweep" / "comparison.csv")
    assert csv["variant"].iloc[0] == last and bool(csv["chosen"].iloc[0])


# ----------------------------------------------------------------------------- whole folders
def test_a_new_sweep_replaces_the_whole_folder_and_a_broken_one_claims_nothing(tiny_model, market, tmp_path, capsys):
    """A second sweep of the same name leaves none of the first one's variant folders beside its
    comparison.csv; a sweep whose every variant broke leaves no selection.json / .png behind and
    does not say it wrote them. Not slow, and without the `sequential` fixture: the quick run's one
    vector sweep confirmed in Cerebro, with its tearsheet."""
    path = _write(tmp_path, SWEEP_TOML)

    def run(toml_path):
        return sweep.run_sweep(
            toml_path,
            out_root=tmp_path / "r",
            name="same",
            model_for=lambda cfg, data: tiny_model,
            data=market,
            cache_dir=tmp_path / "cache",
            progress=None,
            confirm=1,
        )

    first = run(path)
    out = tmp_path / "r" / "same"
    assert {"broken", first.confirmed[0], "selection.json", "selection.png"} <= {p.name for p in out.iterdir()}
    other = SWEEP_TOML.replace("top_k = [3, 5]", "top_k = [4]").replace('"broken"', '"broken-too"')
    second = run(_write(tmp_path, other, "other.toml"))
    names = {p.name for p in out.iterdir() if p.is_dir()}
    assert names == {second.confirmed[0], "broken-too"}  # nothing of the first sweep's folders
    assert sorted(pd.read_csv(out / "comparison.csv")["variant"]) == ["broken-too", "slow-review", "top_k=4"]
    assert [p.name for p in tmp_path.joinpath("r").iterdir()] == ["same"]  # no temporary left beside it

    all_broken = 'base = "default"\n' + SWEEP_TOML.split("[variants.grid]")[0].split('base = "default"')[1]
    all_broken += "[variants.grid]\ntop_k = [0, -1]\n"
    broken = run(_write(tmp_path, all_broken, "broken.toml"))
    assert broken.report is None and all(r["status"] == "error" for r in broken.rows)
    assert sorted(p.name for p in out.iterdir()) == ["comparison.csv", "comparison.md", "top_k=-1", "top_k=0"]
    assert broken.files == ["comparison.csv", "comparison.md"]
    sweep.print_comparison(broken)
    printed = capsys.readouterr().out
    assert "wrote comparison.csv, comparison.md in" in printed and "selection.json" in printed
    assert "no variant worked, so there is no selection report" in printed
