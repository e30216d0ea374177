"""One set of shared options: --no-progress, --out, --model-store, --workers and --ray are defined
once (core.cli.SHARED_OPTIONS) and mean the same thing in every command's parser; where one
does not apply, core.cli.NOT_APPLICABLE says so and why."""

import argparse

import pytest

import run_backtest
from core.cli import NOT_APPLICABLE, SHARED_OPTIONS, add_shared_options

FIELDS = ("dest", "type", "default", "nargs", "const", "help", "metavar", "required", "choices")


def every_command() -> dict:
    """{command: parser}: each top-level parser, and each subcommand found through its
    _SubParsersAction (e.g. 'paper init'); a parser that only holds subcommands is not a command."""
    commands = {}
    for name, parser in run_backtest.command_parsers().items():
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            commands[name] = parser
        for action in subs:
            for sub_name, sub_parser in action.choices.items():
                commands[f"{name} {sub_name}"] = sub_parser
    return commands


def option(parser: argparse.ArgumentParser, flag: str):
    return next((a for a in parser._actions if flag in a.option_strings), None)


def shared_action(flag: str):
    return option(add_shared_options(argparse.ArgumentParser(), flag), flag)


def test_every_command_has_every_shared_option_that_applies_and_it_means_the_same():
    commands = every_command()
    assert {"main", "zoo", "download", "trade-stats", "paper init", "paper step", "paper status"} <= set(commands)
    missing, differing, listed_but_present = [], [], []
    for command, parser in commands.items():
        for flag in SHARED_OPTIONS:
            action = option(parser, flag)
            if flag in NOT_APPLICABLE.get(command, {}):
                if action is not None:
                    listed_but_present.append(f"{command} {flag}")
                continue
            if action is None:
                missing.append(f"{command} {flag}")
                continue
            want = shared_action(flag)
            if type(action) is not type(want) or any(getattr(action, f) != getattr(want, f) for f in FIELDS):
                differing.append(f"{command} {flag}")
    assert not missing, (
        f"shared options missing (add them with add_shared_options, or list them in NOT_APPLICABLE): {missing}"
    )
    assert not differing, f"shared options defined differently from SHARED_OPTIONS: {differing}"
    assert not listed_but_present, f"NOT_APPLICABLE lists options these commands do have: {listed_but_present}"
    # the list names real commands and options, each with its reason
    for command, reasons in NOT_APPLICABLE.items():
        assert command in commands and set(reasons) <= set(SHARED_OPTIONS) and all(reasons.values()), command


def test_the_walk_catches_a_command_without_a_shared_option(monkeypatch):
    """The check above fails when a command drops a shared option: a zoo parser without --ray."""
    original = run_backtest.zoo_parser

    def without_ray():
        parser = original()
        parser._remove_action(option(parser, "--ray"))
        return parser

    monkeypatch.setattr(run_backtest, "zoo_parser", without_ray)
    with pytest.raises(AssertionError, match=r"zoo --ray"):
        test_every_command_has_every_shared_option_that_applies_and_it_means_the_same()


def test_paper_init_and_step_take_no_progress_as_the_main_job_does(tmp_path):
    """The newcomer's case: 'paper init ... --no-progress' was an unrecognized argument."""
    parser = run_backtest.command_parsers()["paper"]
    args = parser.parse_args(["--root", str(tmp_path), "init", "x", "--start", "2021-01-04", "--no-progress"])
    assert args.no_progress is True and args.model_store is None
    assert parser.parse_args(["step", "x", "--no-progress"]).no_progress is True
    assert run_backtest.main_parser().parse_args(["--no-progress"]).no_progress is True
    assert run_backtest.download_parser().parse_args(["--tickers", "AAPL", "--no-progress"]).no_progress is True
    with pytest.raises(SystemExit):
        parser.parse_args(["status", "x", "--no-progress"])  # listed in NOT_APPLICABLE: status writes nothing


def test_zoo_workers_default_and_bad_value(capsys):
    assert run_backtest.zoo_parser().parse_args([]).workers is None  # the zoo then runs ZOO_WORKERS processes
    assert run_backtest.ZOO_WORKERS == 2
    assert run_backtest.main(["zoo", "--workers", "0"]) == 2
    assert "--workers 0: give at least 1" in capsys.readouterr().err
