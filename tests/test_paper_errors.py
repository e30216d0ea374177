"""Paper accounts name what is wrong (issues 17.6 and 20.6): a damaged book.json or journal.csv on
`step` and `status` (which file, how to restore it), a stock file that ends early (named, not
called revised data), and an account started inside the model's validation years (a warning)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from jobs import paper
from models.dataset import Split
from tests.test_paper import account_files, model_dir, new_account, write_csv_folder  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def days(embedded):
    return list(embedded[1].loc["2021-01-04":].index[:6])


def cli(root, *argv):
    return paper.main(["--root", str(root), *argv])


@pytest.mark.slow
@pytest.mark.parametrize("command", ["step", "status"])
def test_a_damaged_book_names_the_file_and_a_step_rebuilds_it(tmp_path, model_dir, embedded, days, capsys, command):  # noqa: F811
    root, path, _ = new_account(tmp_path, model_dir, embedded, days[3])
    assert paper.step(root, "acct", tearsheet=False).status == "stepped"
    book = (path / "current").resolve() / "book.json"
    good = book.read_text()
    book.write_text(good[: len(good) // 2])  # cut off mid-write
    capsys.readouterr()
    assert cli(root, command, "acct") == 2
    err = capsys.readouterr().err
    assert f"{book} is damaged (not valid JSON" in err and "Traceback" not in err
    assert f"delete it (rm {book}) and run 'run_backtest.py paper step acct'" in err
    book.unlink()  # what the message says to do
    assert cli(root, "step", "acct", "--no-tearsheet") == 0
    assert ((path / "current").resolve() / "book.json").read_text() == good
    assert cli(root, "status", "acct") == 0 and "book at the close of" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("command", ["step", "status"])
@pytest.mark.parametrize("damage", ["cut", "garbled"])
def test_a_damaged_journal_names_the_file_and_the_backup(tmp_path, model_dir, embedded, days, capsys, command, damage):  # noqa: F811
    root, path, _ = new_account(tmp_path, model_dir, embedded, days[3])
    paper.step(root, "acct", tearsheet=False)
    journal = (path / "current").resolve() / "journal.csv"
    text = journal.read_text()
    if damage == "cut":
        journal.write_text(text[: len(text) - 40])  # cut off mid-write: the last row's sha256 is cut short
    else:
        lines = text.splitlines()
        cells = lines[2].split(",")
        cells[3] = "12O,000.5"  # a typed-over value (and one field too many)
        journal.write_text("\n".join([*lines[:2], ",".join(cells), *lines[3:]]) + "\n")
    before = account_files(path)
    capsys.readouterr()
    assert cli(root, command, "acct") == 2
    err = capsys.readouterr().err
    assert f"{journal} is damaged (line " in err and "Traceback" not in err
    assert f"restore it from a backup of {path}" in err and "paper init acct" in err
    assert account_files(path) == before  # nothing was written over it


@pytest.mark.slow
def test_a_stock_file_that_ends_early_is_named(tmp_path, model_dir, embedded, days):  # noqa: F811
    root, path, csv = new_account(tmp_path, model_dir, embedded, days[5])
    paper.step(root, "acct", tearsheet=False)
    journal = paper.read_csv_rows(path / "journal.csv")
    bought = next(r for r in journal if "BUY" in r["decisions"] and r["date"] > str(days[0].date()))
    ticker = bought["decisions"].split("BUY ")[1].split(" ")[0]
    file = csv / f"{ticker}.csv"
    frame = pd.read_csv(file, index_col="Date")
    cut = frame.loc[: str((pd.Timestamp(bought["date"]) - pd.Timedelta(days=1)).date())]
    cut.to_csv(file)  # an export that stopped before the day the account bought it
    result = paper.step(root, "acct", tearsheet=False)
    assert result.status == "diverged"
    [note] = [m for m in result.messages if "end before the data's last day" in m]
    assert f"{file} ends {cut.index[-1]}" in note and "not revised data" in note


@pytest.mark.slow
def test_an_account_started_in_the_validation_years_warns(tmp_path, model_dir, embedded):  # noqa: F811
    csv = write_csv_folder(tmp_path / "csv", embedded, "2021-01-08")
    with pytest.warns(UserWarning, match=r"starts 2016-06-01, inside the model's validation years"):
        paper.init(tmp_path / "paper", "early", "2016-06-01", model_dir=model_dir, data_dir=csv, benchmark="SP500")
    assert paper.in_sample_warning(pd.Timestamp("2012-06-01"), Split()).count("training years") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert paper.in_sample_warning(pd.Timestamp("2017-01-03"), Split()) is None


def test_a_flat_account_has_no_tearsheet_instead_of_a_quantstats_error(embedded):
    from types import SimpleNamespace

    days = embedded[1].loc["2021-01-04":].index[:10]
    journal = [{"date": str(d.date()), "value": "100000.0"} for d in days]
    data = SimpleNamespace(benchmark=embedded[1], benchmark_name="SP500")
    account = {"name": "flat", "generations": [{"cash": 100000.0}]}
    assert paper.tearsheet_html(journal, data, account) is None
    journal[-1]["value"] = "101000.0"
    assert "<html" in paper.tearsheet_html(journal, data, account).lower()
