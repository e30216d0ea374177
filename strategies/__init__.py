"""Backtrader strategies: the top-k alpha strategy, and ScoreAlpha for precomputed scores.

strategies/ never imports models/: the strategy takes its alpha as a param, so any indicator
with a `score` line (the LSTM, ScoreAlpha, a user's own) drops in.
"""

from strategies.alpha_rank import AlphaRankStrategy, cross_section, rank_to_unit
from strategies.scores import ScoreAlpha, load_scores_csv, scores_csv

__all__ = ["AlphaRankStrategy", "ScoreAlpha", "load_scores_csv", "scores_csv", "cross_section", "rank_to_unit"]
