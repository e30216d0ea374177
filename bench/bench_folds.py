"""How a walk-forward selection fold learns, before and after: the sweep's 10 selection folds
(models.selection.selection_walk_forward, the default preset, the embedded data) trained once per
training stride in this process, one row per fold with its validation loss (eval mode, on every
validation window whatever the training stride), its validation rank IC, its out-of-sample rank
IC on the year it scores, epochs run, best epoch and fit seconds.

    python -m bench.bench_folds                  # stride 1 (before) against 2 (the sweep's default)
    python -m bench.bench_folds --strides 1,2,3  # more candidates; the first is the reference

Rank IC: per day, Spearman of the fold's scores against the 10-day forward excess returns
(analyzers.ic, lag 0, the label's own horizon), averaged over the days. The patience-2 columns
replay early stopping with patience 2 on the reference's own validation history (the same run up
to the stop: patience only decides when to stop), so they cost no training.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from bench.common import print_table


def fold_ics(model, prices, bench) -> list[dict]:
    """For each fold of a fitted WalkForwardModel: mean daily rank IC on its validation window
    and on the dates it scores (its test period), from one feature pass over the data."""
    from analyzers.ic import daily_ic, forward_excess_returns_from
    from models.base import scatter_scores, select_ends

    fwd = forward_excess_returns_from(prices.close, bench, model.config.horizon, lag=0)
    first = model.folds[0].model
    index = first._windows(prices, bench, model.features_)
    out = []
    for fold in model.folds:
        s = fold.split
        ends = select_ends(index, False, s.valid_start)
        ends = ends[index.row_dates[ends] <= np.datetime64(pd.Timestamp(s.test_end))]
        scores = pd.DataFrame(
            scatter_scores(prices, index, ends, fold.model.scores_for(index, ends)),
            index=prices.dates,
            columns=prices.tickers,
        )
        row = {}
        for name, (start, end) in {"valid": (s.valid_start, s.valid_end), "oos": (s.test_start, s.test_end)}.items():
            row[name] = float(daily_ic(scores.loc[start:end], fwd.loc[start:end], method="spearman").mean())
        out.append(row)
    return out


def replay_patience(history: list[dict], patience: int) -> dict:
    """Early stopping with `patience` replayed on a run's validation losses (models.train.EarlyStopping's
    rule): the epochs it would run, its best epoch and that epoch's loss."""
    best_loss, best_epoch, stale, ran = np.inf, 0, 0, 0
    for row in history:
        ran = row["epoch"]
        if row["valid_loss"] < best_loss - 1e-6:
            best_loss, best_epoch, stale = row["valid_loss"], row["epoch"], 0
            continue
        stale += 1
        if stale >= patience:
            break
    return {"epochs": ran, "best_epoch": best_epoch, "valid_loss": best_loss}


def fit_folds(cfg, prices, bench, stride: int, workers: int):
    """The selection model at training stride `stride`, fitted; (model, wall seconds)."""
    from models.selection import selection_walk_forward

    model = selection_walk_forward(cfg, train_stride=stride)
    t0 = time.perf_counter()
    model.fit(prices, bench, progress=False, workers=workers)
    return model, time.perf_counter() - t0


def fold_rows(model, prices, bench) -> list[dict]:
    """One dict per fold: the figures the table compares."""
    rows = []
    for fold, ic in zip(model.folds, fold_ics(model, prices, bench)):
        r = fold.model.report_
        rows.append(
            {
                "refit": fold.split.test_start[:4],
                "n_train": r.n_samples["train"],
                "n_valid": r.n_samples["valid"],
                "valid_loss": min(h["valid_loss"] for h in r.history),
                "valid_ic": ic["valid"],
                "oos_ic": ic["oos"],
                "epochs": len(r.history),
                "best": r.best_epoch,
                "seconds": r.seconds,
                "history": r.history,
            }
        )
    return rows


def comparison(results: dict) -> list[dict]:
    """Per fold, the reference (first stride) and each candidate side by side, plus a mean row."""
    strides = list(results)
    ref = strides[0]
    table = []
    for i, base in enumerate(results[ref]["rows"]):
        p2 = replay_patience(base["history"], 2)
        row = {"fold": i, "refit": base["refit"]}
        for s in strides:
            f = results[s]["rows"][i]
            row |= {f"loss s{s}": f["valid_loss"], f"vIC s{s}": f["valid_ic"], f"oosIC s{s}": f["oos_ic"]}
            row |= {f"ep s{s}": f"{f['epochs']}/{f['best']}", f"sec s{s}": f["seconds"], f"n_train s{s}": f["n_train"]}
        row |= {"ep p2": f"{p2['epochs']}/{p2['best_epoch']}", "loss p2": p2["valid_loss"]}
        table.append(row)
    table.append(mean_row(table, strides))
    return table


def mean_row(table: list[dict], strides: list) -> dict:
    row = {"fold": "mean", "refit": "all"}
    for key in table[0]:
        values = [t[key] for t in table]
        if key.startswith(("loss", "vIC", "oosIC")):
            row[key] = float(np.mean(values))
        elif key.startswith(("sec", "n_train")):
            row[key] = float(np.sum(values))  # totals
        elif key.startswith("ep"):
            ran = [int(v.split("/")[0]) for v in values]
            row[key] = f"{sum(ran)} in all"
    return row


def fmt_row(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, float):
            out[k] = f"{v:.4f}" if k.startswith(("loss", "vIC", "oosIC")) else f"{v:,.0f}" if "n_" in k else f"{v:.1f}"
        else:
            out[k] = v
    return out


def main(argv=None) -> dict:
    from configs import load_config
    from core.pool import auto_workers
    from feeds import load_embedded
    from jobs.store import model_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strides", default="1,2", help="training strides to compare; the first is the reference")
    parser.add_argument("--workers", type=int, default=0, help="processes per fit (0: one per usable CPU)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    prices, bench = load_embedded()
    cfg = model_config(load_config("default"))
    workers = args.workers or auto_workers(cfg.threads, 10)
    results = {}
    for s in [int(x) for x in args.strides.split(",")]:
        model, wall = fit_folds(cfg, prices, bench, s, workers)
        results[s] = {"rows": fold_rows(model, prices, bench), "wall": wall}
    table = comparison(results)
    print_table([fmt_row(r) for r in table], "selection folds by training stride (loss: validation, eval mode)")
    for s, r in results.items():
        print(f"stride {s}: the 10 folds fitted in {r['wall']:.1f} s wall in {workers} process(es)")
    return {"table": table, "walls": {s: r["wall"] for s, r in results.items()}, "workers": workers}


if __name__ == "__main__":
    main()
