"""The alpha model: features, labels, windows and splits, the one model interface and its zoo
(the LSTM and its baselines), training, the saved artifact, and the Backtrader indicator that
wraps any of them. May import feeds/, never strategies/ or analyzers/."""

import os

# Before torch loads OpenMP: with busy-waiting threads, 2 torch threads on 2 shared cores ran a
# training batch 20x slower than 1 thread; passive waiting removes most of that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from models.base import AlphaModelLike, BaseAlphaModel
from models.baselines import LightGBMModel, LogisticModel, MLPModel, MomentumModel, RandomModel
from models.config import ModelConfig
from models.dataset import Split
from models.indicator import AlphaIndicator, LSTMAlpha
from models.registry import MODEL_NAMES, make_model
from models.train import AlphaModel
from models.walkforward import WalkForwardModel, load_any
