"""The options several commands share, defined once. run_backtest.py (the main job, sweeps, zoo,
download, trade-stats) and the paper account's parser add them with add_shared_options, so each
means the same thing wherever it applies; NOT_APPLICABLE lists where one does not, and why
(tests/test_cli_options.py walks every command's parser against both). Here, not in
run_backtest.py, because nothing may import the command line (tests/test_imports.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHARED_OPTIONS = {
    "--no-progress": {"action": "store_true", "help": "no progress bars"},
    "--out": {
        "metavar": "DIR",
        "default": str(ROOT / "results"),
        "help": "results root: the command writes <out>/<name>/ (default: results/)",
    },
    "--model-store": {
        "metavar": "DIR",
        "default": None,
        "help": "where trained models are saved and looked up (default: models/store/)",
    },
    "--workers": {
        "type": int,
        "metavar": "N",
        "default": None,
        "help": "run the independent pieces (variants, walk-forward folds, zoo fits) in N local processes "
        "(default: the command's own: one per usable CPU for a sweep, 2 for the zoo, [walk_forward] workers "
        "for the folds, whose 0 means one per usable CPU)",
    },
    "--ray": {
        "action": "store_true",
        "help": "run the independent pieces (variants, walk-forward folds, zoo fits) as Ray tasks on a local "
        "instance (2 CPUs) instead of processes",
    },
}
# Where a shared option does not apply, and why (the test holds every command to this list).
NOT_APPLICABLE = {
    "trade-stats": dict.fromkeys(
        ("--no-progress", "--out", "--model-store", "--workers", "--ray"),
        "reads one trade log; writes only the --plots DIR it is given",
    ),
    "download": {
        "--out": "writes the price cache (--cache DIR), not a results folder",
        "--model-store": "trains no model",
        "--workers": "fetches in sequential batches (Yahoo rate-limits parallel clients)",
        "--ray": "fetches in sequential batches (Yahoo rate-limits parallel clients)",
    },
    "paper init": {
        "--out": "an account lives under --root (before the subcommand), not in a results folder",
        "--workers": "trains at most one fold, in this process",
        "--ray": "trains at most one fold, in this process",
    },
    "paper step": {
        "--out": "an account lives under --root (before the subcommand), not in a results folder",
        "--model-store": "a refitting account keeps its folds in the account, a fixed one its frozen copy",
        "--workers": "trains the folds due one at a time, in this process",
        "--ray": "trains the folds due one at a time, in this process",
    },
    "paper status": dict.fromkeys(
        ("--no-progress", "--out", "--model-store", "--workers", "--ray"), "reads the account; writes nothing"
    ),
}


def add_shared_options(parser, *names):
    """Add the shared options `names` (keys of SHARED_OPTIONS) to a parser or argument group."""
    for name in names:
        parser.add_argument(name, **SHARED_OPTIONS[name])
    return parser
