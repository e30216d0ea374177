"""The alpha model: features, labels, windows and splits, the LSTM, training, the saved
artifact, and the Backtrader indicator that wraps it. May import feeds/, never strategies/ or
analyzers/."""
from models.config import ModelConfig
from models.dataset import Split
from models.train import AlphaModel
from models.indicator import LSTMAlpha
from models.walkforward import WalkForwardModel, load_any
