"""Permutation importance, as the seed computed it, but on the validation period only.

For each feature: shuffle its values across the validation samples (each sample keeps its other
features and its label), score again, and record how much the loss rises. Repeated `repeats`
times with different shuffles; the mean and spread of the rise are reported. The test period is
never touched: importance measured there would be one more way of choosing a model on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from models import labels as L
from models.dataset import split_samples


def _loss(model, windows: np.ndarray, y: np.ndarray) -> float:
    loss_fn = nn.BCEWithLogitsLoss() if model.config.label == "classification" else nn.MSELoss()
    from models.train import net_output

    out = np.empty(len(windows), dtype=np.float32)
    for start in range(0, len(windows), 8192):  # eval mode (dropout off), as predict
        out[start : start + 8192] = net_output(model.net_, windows[start : start + 8192])
    return float(loss_fn(torch.from_numpy(out), torch.from_numpy(y.astype(np.float32))))


def validation_windows(model, prices, benchmark, vix=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows [S, seq_len, F] scaled, labels [S], sample dates [S]) of the validation period."""
    cfg = model.config
    index = model._windows(prices, benchmark, model.features_, vix)
    labels = L.make_labels(prices, benchmark, cfg.horizon, cfg.label)
    ends = L.label_end_dates(prices, cfg.horizon)
    samples, y = split_samples(index, labels, ends, cfg.split, stride=1)
    picked = samples["valid"]
    windows = index.gather(index.ends[picked], model.scaler_.transform(index.rows))
    return windows, y[picked], index.sample_dates()[picked]


def permutation_importance(model, prices, benchmark, vix=None, repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """One row per feature: the validation loss rise when it is shuffled (mean, std over repeats)."""
    model._check_fitted()
    torch.set_num_threads(model.config.threads)
    windows, y, _ = validation_windows(model, prices, benchmark, vix)
    base = _loss(model, windows, y)
    rng = np.random.default_rng(seed)
    rows = []
    for f, name in enumerate(model.features_):
        rises = []
        for _ in range(repeats):
            shuffled = windows.copy()
            shuffled[:, :, f] = windows[rng.permutation(len(windows)), :, f]
            rises.append(_loss(model, shuffled, y) - base)
        rows.append(
            {
                "feature": name,
                "loss_increase": float(np.mean(rises)),
                "std": float(np.std(rises, ddof=1)) if repeats > 1 else 0.0,
                "base_loss": base,
                "repeats": repeats,
                "n_samples": len(windows),
            }
        )
    return pd.DataFrame(rows).sort_values("loss_increase", ascending=False, ignore_index=True)
