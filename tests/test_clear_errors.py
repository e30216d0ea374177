"""Clear errors where the newcomer review found tracebacks (issue 17.6): each names the option, key
or file at fault and says what to do."""

from __future__ import annotations

import datetime as dt
import warnings

import pandas as pd
import pytest

from analyzers import read_trade_log
from core.dates import parse_day
from core.errors import ConfigError, DataError
from feeds import Membership


# ----------------------------------------------------------------------------------- dates typed in
@pytest.mark.parametrize(
    "text, says",
    [
        ("2021-02-30", "February 2021 has days 1 to 28"),
        ("2020-02-30", "February 2020 has days 1 to 29"),
        ("2021-13-01", "there is no month 13"),
        ("yesterday", "is not a date; write it as YYYY-MM-DD"),
        ("03/04/2021", "is not a date; write it as YYYY-MM-DD"),
        ("", "is not a date"),
    ],
)
def test_parse_day_refuses_what_is_not_a_calendar_day(text, says):
    with pytest.raises(ConfigError) as error:
        parse_day(text, "--start")
    assert str(error.value).startswith(f"--start {text!r}") and says in str(error.value)


def test_parse_day_reads_days_and_date_objects():
    assert parse_day("2021-02-28", "--start") == pd.Timestamp("2021-02-28")
    assert parse_day(" 2021-3-1 ", "--end") == pd.Timestamp("2021-03-01")
    assert parse_day(dt.date(2020, 2, 29), "[backtest] start") == pd.Timestamp("2020-02-29")  # TOML dates
    assert parse_day(pd.Timestamp("2020-02-29 15:30"), "x") == pd.Timestamp("2020-02-29")


# ----------------------------------------------------------------------------------- trade-stats
def test_read_trade_log_names_a_missing_or_unreadable_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file; give a trades\.csv"):
        read_trade_log(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_trade_log(tmp_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        read_trade_log(tmp_path / "empty.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataError, match=r"bin\.csv: not a readable CSV"):
        read_trade_log(tmp_path / "bin.csv")


def test_trade_stats_command_on_a_missing_file_exits_2(tmp_path, capsys):
    import run_backtest

    assert run_backtest.main(["trade-stats", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- universes
def membership(tmp_path, text) -> Membership:
    path = tmp_path / "members.csv"
    path.write_text("ticker,start,end\n" + text)
    return Membership.from_csv(path)


def test_overlapping_spans_of_one_ticker_are_refused_naming_both_lines(tmp_path):
    with pytest.raises(DataError) as error:
        membership(tmp_path, "AAPL,2010-01-04,\nMSFT,2010-01-04,\nAAPL,2015-01-02,2016-01-04\n")
    message = str(error.value)
    assert "line 2" in message and "line 4" in message and "spans of AAPL overlap" in message
    assert "2010-01-04..open" in message
    ok = membership(tmp_path, "AAPL,2010-01-04,2012-12-31\nAAPL,2013-01-02,\n")  # left and rejoined
    assert ok.is_member("AAPL", "2012-12-31") and not ok.is_member("AAPL", "2013-01-01")


def test_a_universe_that_shares_no_ticker_with_the_data_is_refused(tmp_path):
    members = membership(tmp_path, "aapl,2010-01-04,\nmsft,2010-01-04,\n")
    with pytest.raises(DataError) as error:
        members.check_tickers(["AAPL", "MSFT", "JNJ"])
    assert "members.csv: none of its 2 ticker(s) (['aapl', 'msft'])" in str(error.value)
    assert "case-sensitive" in str(error.value)
    some = membership(tmp_path, "AAPL,2010-01-04,\nXLNX,2010-01-04,\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert some.check_tickers(["AAPL", "MSFT"]) == ["XLNX"]  # delisted names are normal: listed, no error


# ----------------------------------------------------------------------------------- config types
def test_a_variants_value_of_the_wrong_type_names_key_and_type(tmp_path):
    from jobs.sweep.spec import load_sweep

    path = tmp_path / "bad.toml"
    path.write_text('base = "default"\n[variants.grid]\ntop_k = [3, "5"]\nreview_in = ["calendar", 7]\n')
    _, variants = load_sweep(path)
    errors = {v.name: v.error for v in variants}
    assert errors["top_k=3_review_in=calendar"] is None
    assert errors["top_k=5_review_in=calendar"] == (
        "ConfigError: variant 'top_k=5_review_in=calendar': 'strategy.top_k' = '5' is a string; it must be "
        "a number, like the default top_k = 5 (write it without quotes)"
    )
    assert "'strategy.review_in' = 7 is a number; it must be a string" in errors["top_k=3_review_in=7"]
    assert not any("TypeError" in (e or "") for e in errors.values())


def test_a_config_file_value_of_the_wrong_type_is_refused(tmp_path):
    from configs import load_config

    path = tmp_path / "c.toml"
    path.write_text("[backtest]\ncash = 1e5\nstart = 2021-01-04\n[walk_forward]\nenabled = 1\n")
    with pytest.raises(ConfigError, match=r"c\.toml: 'walk_forward.enabled' = 1 is a number; it must be true or false"):
        load_config("default", path)
    path.write_text("[backtest]\ncash = 1e5\nstart = 2021-01-04\n")  # a float for an int, a TOML date: fine
    config = load_config("default", path)
    assert config["backtest"]["cash"] == 1e5 and config["backtest"]["start"] == dt.date(2021, 1, 4)


@pytest.mark.parametrize("argv", [["--start", "2021-02-30"], ["--start", "yesterday"], ["--end", "2021-13-01"]])
def test_day_options_are_usage_errors_not_pandas_tracebacks(argv, capsys):
    import run_backtest

    with pytest.raises(SystemExit) as stop:
        run_backtest.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}: {argv[0]} {argv[1]!r}" in err and "Traceback" not in err


def test_paper_init_start_is_checked_by_the_parser(tmp_path, capsys):
    from jobs import paper

    with pytest.raises(SystemExit) as stop:
        paper.main(["--root", str(tmp_path), "init", "acct", "--start", "yesterday"])
    assert stop.value.code == 2 and "--start 'yesterday' is not a date" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert run_day_option("2021-3-1") == "2021-03-01"


def run_day_option(text):
    from core.dates import day_argument

    return day_argument("--start")(text)


@pytest.mark.parametrize("value, says", [("2021-02-30", "February 2021 has days 1 to 28"), ("yesterday", "not a date")])
def test_sweep_periods_read_days_strictly(value, says):
    from jobs import sweep

    table = {"selection_start": "2013-01-01", "selection_end": "2016-12-31", "holdout_start": "2017-01-01"}
    with pytest.raises(ConfigError, match=f"selection.holdout_end = '{value}'.*{says}"):
        sweep.sweep_periods({"selection": {**table, "holdout_end": value}})


def test_a_sweep_refuses_a_universe_of_unknown_tickers_before_any_model(tmp_path):
    from jobs import sweep
    from tests.conftest import ROOT

    members = Membership({"NOPE": [(pd.Timestamp("2000-01-01"), pd.Timestamp("2030-01-01"))]}, "members.csv")

    def model_for(config, data):
        raise AssertionError("no model may be fitted for a sweep that cannot trade")

    with pytest.raises(DataError, match=r"members\.csv: none of its 1 ticker\(s\) \(\['NOPE'\]\) is in the data"):
        sweep.run_sweep(
            ROOT / "configs" / "variants.toml", out_root=tmp_path, model_for=model_for, universe=members, progress=None
        )
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------- price panels
def test_a_price_panel_with_a_ticker_twice_is_refused_by_name():
    """Two columns named AAA would make every per-ticker look-up ambiguous: refused, naming it."""
    import numpy as np

    from feeds.panel import PricePanel

    close = pd.DataFrame(np.ones((3, 3)), index=pd.bdate_range("2020-01-01", periods=3), columns=["AAA", "BBB", "AAA"])
    with pytest.raises(DataError, match=r"price panel 'p': ticker\(s\) \['AAA'\] appear more than once"):
        PricePanel({"close": close}, name="p")
    assert PricePanel({"close": close.iloc[:, :2]}, name="p").frame("AAA")["close"].tolist() == [1.0, 1.0, 1.0]
