"""AlphaModel (the LSTM) and the torch training loop it shares with the zoo's MLP.

    model = AlphaModel(ModelConfig(...)).fit(prices, benchmark)   # learns on train, selects on valid
    scores = model.predict(prices, benchmark)                     # date x ticker, score = 2p - 1
    model.save("models/store/default"); AlphaModel.load(...)

fit never sees a label whose horizon reaches past the training (validation) period, the scaler
sees only training rows, and the best epoch is chosen on the validation loss: the test period is
never looked at. The network trains in training mode (dropout on) and is scored in eval mode
(dropout off) everywhere: the validation loss, predict and every walk-forward fold. Measured
before that rule: three training-mode scorings of one set of weights gave validation losses
0.6920 / 0.6933 / 0.6926 against epoch-to-epoch changes of ~3e-4, so the epoch choice followed
dropout noise.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn

from core.errors import ArtifactError
from models.base import INFERENCE_BATCH, BaseAlphaModel, FitReport, Prepared, score_from_output  # noqa: F401
from models.lstm import AlphaLSTM

WEIGHTS = "weights.pt"


def net_output(net: nn.Module, x: np.ndarray) -> np.ndarray:
    """The network's output in eval mode (dropout off), whatever mode it was in; the mode is
    restored afterwards so a training loop can call this between epochs."""
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            return net(torch.from_numpy(x)).numpy()
    finally:
        net.train(was_training)


def loss_function(label: str) -> nn.Module:
    return nn.BCEWithLogitsLoss() if label == "classification" else nn.MSELoss()


def train_one_epoch(net: nn.Module, optimiser, loss_fn, batches, inputs, labels: torch.Tensor) -> float:
    """One pass of mini-batch updates in training mode; the mean training loss per sample.
    `batches` are arrays of sample positions, `inputs(batch)` their model inputs."""
    net.train()
    total, count = 0.0, 0
    for batch in batches:
        optimiser.zero_grad()
        loss = loss_fn(net(torch.from_numpy(inputs(batch))), labels[batch])
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / count


def evaluate(model: "TorchNetModel", prep: Prepared, loss_fn, labels: torch.Tensor) -> float:
    """The validation loss, computed in eval mode (dropout off) exactly as predict scores."""
    raw = model.raw_output(prep.index, prep.ends("valid")).astype(np.float32)
    return float(loss_fn(torch.from_numpy(raw), labels))


class EarlyStopping:
    """Keeps the weights of the best validation epoch; says stop after `patience` epochs without
    an improvement of more than 1e-6."""

    def __init__(self, patience: int):
        self.patience, self.best_loss, self.best_epoch, self.best_state, self.stale = patience, np.inf, 0, None, 0

    def update(self, epoch: int, loss: float, net: nn.Module) -> bool:
        """Record this epoch; True when training should stop."""
        if loss < self.best_loss - 1e-6:
            self.best_loss, self.best_epoch, self.stale = loss, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience


def fit_network(model: "TorchNetModel", net: nn.Module, prep: Prepared, progress: bool) -> None:
    """Mini-batch AdamW on the training windows; after each epoch the validation loss in eval
    mode; keeps the weights of the best validation epoch (early stopping with cfg.patience)."""
    from tqdm.auto import tqdm

    cfg, index, report = model.config, prep.index, model.report_
    rng = np.random.default_rng(cfg.seed)
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = loss_function(cfg.label)
    scaled = prep.scaler.transform(index.rows)
    train_ends = prep.ends("train")
    y_train = torch.from_numpy(prep.labels("train").astype(np.float32))
    y_valid = torch.from_numpy(prep.labels("valid").astype(np.float32))
    model.net_ = net
    stopping = EarlyStopping(cfg.patience)
    bar = tqdm(range(1, cfg.epochs + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        order = rng.permutation(len(train_ends))
        batches = (order[start : start + cfg.batch_size] for start in range(0, len(order), cfg.batch_size))
        train_loss = train_one_epoch(
            net, optimiser, loss_fn, batches, lambda batch: index.gather(train_ends[batch], scaled), y_train
        )
        valid_loss = evaluate(model, prep, loss_fn, y_valid)
        report.history.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss})
        bar.set_postfix(train=f"{train_loss:.4f}", valid=f"{valid_loss:.4f}")
        if stopping.update(epoch, valid_loss, net):
            break
    bar.close()
    report.best_epoch = stopping.best_epoch
    net.load_state_dict(stopping.best_state)
    net.eval()


class TorchNetModel(BaseAlphaModel):
    """A torch network on scaled windows: trained by fit_network, saved as a state dict loaded
    with weights_only=True. Subclasses say which network (`_make_net`)."""

    def __init__(self, config=None, **config_params):
        super().__init__(config, **config_params)
        self.net_: nn.Module | None = None

    def _make_net(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    def _fit_state(self, prep: Prepared, progress: bool) -> None:
        torch.manual_seed(self.config.seed)
        fit_network(self, self._make_net(len(prep.features)), prep, progress)

    def _output(self, x: np.ndarray) -> np.ndarray:
        return net_output(self.net_, x)

    def _is_fitted(self) -> bool:
        return self.net_ is not None

    def _state_files(self) -> dict:
        buffer = io.BytesIO()
        torch.save(self.net_.state_dict(), buffer)
        return {WEIGHTS: buffer.getvalue()}

    def _load_state(self, files: dict, meta: dict) -> None:
        if WEIGHTS not in files:
            raise ArtifactError(f"the {self.KIND} artifact has no {WEIGHTS}; retrain it")
        state = torch.load(io.BytesIO(files[WEIGHTS]), map_location="cpu", weights_only=True)
        net = self._make_net(len(self.features_))
        net.load_state_dict(state)
        net.eval()
        self.net_ = net

    def _state_digest(self) -> bytes:
        parts = []
        for name, tensor in sorted(self.net_.state_dict().items()):
            parts.append(name.encode())
            parts.append(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
        return b"".join(parts)


class AlphaModel(TorchNetModel):
    """The default model: an LSTM over the last seq_len days of features (models.lstm)."""

    NAME = "lstm"
    KIND = "lstm-alpha"

    def _make_net(self, n_features: int) -> nn.Module:
        cfg = self.config
        return AlphaLSTM(n_features, cfg.hidden, cfg.layers, cfg.dropout)
