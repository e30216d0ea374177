"""The two backtest engines' set-up (shared by every job): the costs of [backtest]
(backtest_costs), build_cerebro and the indicator factories for Backtrader; period_scores and
vector_panel for the compiled vector engine
(strategies/vector.py), trade for trade Cerebro's; strategy_sharpe, and the equal-weight yardstick
(equal_weight_curve, universe_baseline) every report compares with."""

from __future__ import annotations

from dataclasses import dataclass

import backtrader as bt
import pandas as pd

import analyzers as A
from feeds import ArrayData, ConfigError, DataError, LeanBroker, Membership, PricePanel, set_slippage
from jobs.market import MarketData, fed_frames
from jobs.periods import backtest_period
from models import AlphaIndicator, LSTMAlpha
from strategies import AlphaRankStrategy, ScoreAlpha

__all__ = [
    "Costs",
    "backtest_costs",
    "build_cerebro",
    "check_enough_stocks",
    "equal_weight_curve",
    "indicator_class",
    "lstm_alpha",
    "model_alpha",
    "period_panel",
    "period_scores",
    "score_alpha",
    "strategy_params",
    "strategy_sharpe",
    "universe_baseline",
    "vector_panel",
]


def strategy_params(config: dict) -> dict:
    """The [strategy] table's AlphaRankStrategy params (the strategy's own list decides)."""
    allowed = set(AlphaRankStrategy.params._getkeys())
    return {k: v for k, v in config["strategy"].items() if k in allowed}


@dataclass(frozen=True)
class Costs:
    """What a fill costs beyond its price, from [backtest]: `commission` and `slippage` are fractions
    a side (a buy fills at open x (1 + slippage), a sell at open x (1 - slippage), in both engines:
    feeds.broker.set_slippage); `max_volume_pct` (None = no cap) caps each order at that fraction
    of the stock's volume on the decision day (AlphaRankStrategy's param of that name)."""

    commission: float = 0.0
    slippage: float = 0.0
    max_volume_pct: float | None = None
    close_only: bool = False  # the data has no real open/high/low: Backtrader's cap would cancel every slip

    def strategy_params(self) -> dict:
        return {} if self.max_volume_pct is None else {"max_volume_pct": self.max_volume_pct}

    def record(self) -> dict:
        """run.json's "costs": the settings, and why slip_out is set."""
        out = {"commission": self.commission, "slippage": self.slippage, "max_volume_pct": self.max_volume_pct}
        if self.slippage:
            out["slip_out"] = True
            out["slip_out_why"] = self.slip_out_why()
        return out

    def slip_out_why(self) -> str:
        if self.close_only:
            return (
                "close-only data (open = high = low = close): Backtrader's default cap at the bar's high/low "
                "would cancel every slip, so slip_out=True is set"
            )
        return "slip_out=True on every data: fills at open x (1 +/- slippage), not capped at the bar's high/low"

    def summary(self) -> str:
        """One line for the printed summary."""
        parts = [f"commission {self.commission * 1e4:.1f} bp a side"]
        if self.slippage:
            why = (
                "close-only data, where Backtrader's cap at high/low would cancel it" if self.close_only else "all data"
            )
            parts.append(f"slippage {self.slippage * 1e4:.1f} bp a side (slip_out=True: {why})")
        else:
            parts.append("no slippage")
        cap = self.max_volume_pct
        parts.append("no volume cap" if cap is None else f"orders capped at {100 * cap:g} % of the day's volume")
        return "costs: " + ", ".join(parts)


def backtest_costs(config: dict, data: MarketData | None = None) -> Costs:
    """[backtest] commission, slippage and max_volume_pct (0 = no cap), checked; with `data`, a
    volume cap on data without volume is refused naming the data."""
    bt_cfg = config["backtest"]
    commission = float(bt_cfg["commission"])
    slippage = float(bt_cfg.get("slippage", 0.0) or 0.0)
    cap = float(bt_cfg.get("max_volume_pct", 0.0) or 0.0)
    if not (0 <= slippage < 0.1):
        raise ConfigError(f"[backtest] slippage = {slippage}: give a fraction a side in [0, 0.1); 5 bp is 0.0005")
    if not (0 <= cap <= 1):
        raise ConfigError(
            f"[backtest] max_volume_pct = {cap}: give a fraction of the day's volume in (0, 1], 0 = no cap"
        )
    available = data.prices.available if data is not None else {"open", "high", "low", "volume"}
    if cap and "volume" not in available:
        raise DataError(
            f"[backtest] max_volume_pct = {cap}, but the price data {data.prices.name!r} has no volume "
            f"(fields: {sorted(available)}); give data with volume or set max_volume_pct = 0"
        )
    close_only = not ({"open", "high", "low"} & set(available))
    return Costs(commission, slippage, cap or None, close_only)


def check_enough_stocks(n: int, params: dict, start, end) -> None:
    if n < params.get("top_k", 5):
        raise DataError(
            f"only {n} stocks have prices between {start.date()} and {end.date()}, fewer than "
            f"top_k={params.get('top_k', 5)}; lower top_k or widen the period"
        )


def build_cerebro(
    data: MarketData,
    start,
    end,
    alpha_for,
    params: dict,
    cash: float,
    commission: float,
    universe: Membership | None = None,
    lean: bool = True,
    make_feed=None,
    strategy=AlphaRankStrategy,
    min_bars: int = 2,
    slippage: float = 0.0,
) -> bt.Cerebro:
    """A Cerebro fed only the backtest period (warm-up history goes to the alpha, not the feeds),
    the benchmark as a data named after it, and AlphaRankStrategy with `alpha_for(benchmark_data)`
    as its alpha. make_feed(frame_or_series) makes each feed (default ArrayData); `strategy` may be a
    subclass; a stock needs `min_bars` bars in the period to be added (jobs/paper.py uses these);
    `slippage` a fraction a side (feeds.broker.set_slippage)."""
    make_feed = make_feed or (lambda frame: ArrayData(dataname=frame, lean=lean))
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.setbroker(LeanBroker())  # same fills and values as BackBroker (tested), skips flat positions
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    set_slippage(cerebro.broker, slippage)
    bench = data.benchmark.loc[start:end]
    if bench.empty:
        raise DataError(f"benchmark {data.benchmark_name!r} has no prices between {start.date()} and {end.date()}")
    bench_feed = cerebro.adddata(make_feed(bench), name=data.benchmark_name)
    frames = fed_frames(data, start, end, min_bars)
    for ticker, frame in frames.items():
        cerebro.adddata(make_feed(frame), name=ticker)
    check_enough_stocks(len(frames), params, start, end)
    cerebro.addstrategy(
        strategy, alpha=alpha_for(bench_feed), benchmark=data.benchmark_name, universe=universe, **params
    )
    return cerebro


def indicator_class(model) -> type:
    """LSTMAlpha for the LSTM (alone or walk-forward), AlphaIndicator for every other model."""
    name = getattr(model, "model_name", None) or getattr(model, "NAME", "lstm")
    return LSTMAlpha if name == "lstm" else AlphaIndicator


def model_alpha(model, data: MarketData, start):
    """The model's indicator factory for a Cerebro that starts at `start`: history before it warms up."""
    before = pd.Timestamp(start) - pd.Timedelta(days=1)

    def alpha_for(bench_feed):
        return indicator_class(model).factory(
            model,
            benchmark=bench_feed,
            history=data.prices.between(None, before),
            history_benchmark=data.benchmark.loc[:before],
        )

    return alpha_for


lstm_alpha = model_alpha  # the name the LSTM-only project used


def score_alpha(scores: pd.DataFrame):
    def alpha_for(_bench_feed):
        return ScoreAlpha.factory(scores)

    return alpha_for


def period_panel(data, start, end):
    """(panel, benchmark, first day) exactly as LSTMAlpha's BatchScorer sees them in a Cerebro
    built by build_cerebro: the tickers it feeds (two or more bars in the period), every
    bar up to `end` (history before `start` is warm-up), scored from the first fed day on."""
    upto = data.prices.between(None, end)
    fed, first = [], None
    for ticker, frame in upto.items():
        in_period = frame.loc[start:end]
        if len(in_period) >= 2:
            fed.append(ticker)
            first = in_period.index[0] if first is None else min(first, in_period.index[0])
    return upto.select(fed), data.benchmark.loc[:end], first


def period_scores(model, data, start, end, cache_dir=None) -> tuple[pd.DataFrame, bool]:
    """(scores, cache hit): the model's scores for a backtest of [start, end], from the score
    cache or computed once; bit for bit the scores LSTMAlpha gives in that Cerebro (tested)."""
    from models.score_cache import DEFAULT_CACHE_DIR, cached_scores

    panel, bench, first = period_panel(data, start, end)
    if first is None:
        raise DataError(
            f"no stock has two or more prices between {pd.Timestamp(start).date()} and "
            f"{pd.Timestamp(end).date()}; widen the backtest period"
        )
    return cached_scores(model, panel, bench, data.vix, start=first, cache_dir=cache_dir or DEFAULT_CACHE_DIR)


def vector_panel(data: MarketData, scores: pd.DataFrame, start, end, universe: Membership | None = None):
    """The vector engine's shared arrays for a backtest of [start, end]: the stocks build_cerebro
    feeds, the benchmark's days in the calendar (it is a data of that Cerebro), metrics against
    the benchmark up to `end` (as PortfolioMetrics gets it)."""
    from strategies.vector import prepare

    panel = prepare(fed_frames(data, start, end), scores, start, end, universe=universe, benchmark=data.benchmark)
    if panel.benchmark is not None:
        panel.benchmark = data.benchmark.loc[:end]
    return panel


def strategy_sharpe(config: dict, data: MarketData, scores: pd.DataFrame) -> float:
    """Sharpe of the configured strategy trading `scores` over the backtest period, without the
    reports: the vector engine (trade for trade Cerebro's, tests/test_vector.py)."""
    from strategies.vector import simulate_prepared

    start, end = backtest_period(config, data)
    costs = backtest_costs(config, data)
    result = simulate_prepared(
        vector_panel(data, scores, start, end),
        {**strategy_params(config), **costs.strategy_params()},
        float(config["backtest"]["cash"]),
        costs.commission,
        slippage=costs.slippage,
    )
    sharpe = result.metrics.get("sharpe")
    return float("nan") if sharpe is None else float(sharpe)


def equal_weight_curve(prices: PricePanel, dates: pd.DatetimeIndex) -> pd.Series:
    """Growth of 1 in an equal-weight portfolio of every stock that trades each day, rebalanced
    daily, no costs, over `dates` (the first day is the start, as the strategy's cash)."""
    close = prices.close.reindex(dates)
    daily = close.pct_change(fill_method=None).mean(axis=1, skipna=True).fillna(0.0)
    daily.iloc[0] = 0.0
    return (1 + daily).cumprod()


def universe_baseline(prices: PricePanel, dates: pd.DatetimeIndex) -> dict:
    """The honest yardstick on a hand-picked universe: the equal-weight portfolio of its stocks.
    A strategy that only matches it has shown no skill at picking among these names, whatever
    it does against the index."""
    m = A.compute_metrics(equal_weight_curve(prices, dates), initial_value=1.0)
    return {
        "universe_ew_total_return": m["total_return"],
        "universe_ew_cagr": m["cagr"],
        "universe_ew_volatility": m["volatility"],
        "universe_ew_sharpe": m["sharpe"],
        "universe_ew_max_drawdown": m["max_drawdown"],
    }
