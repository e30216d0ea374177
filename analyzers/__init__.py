"""Backtrader analyzers that work on any Cerebro: trade log, portfolio metrics, QuantStats
tearsheet, pyfolio positions for every data, alpha quality (IC / rank IC), trade statistics, a
headless Backtrader plot. Import neither models/ nor strategies/."""

from analyzers.alpha_quality import AlphaQuality
from analyzers.alpha_report import write_alpha_report
from analyzers.btplot import save_bt_plot
from analyzers.collect import analyzer_results, import_analyzer
from analyzers.ic import alpha_report
from analyzers.metrics import PortfolioMetrics, align_benchmark, compute_metrics, daily_returns, equity_csv
from analyzers.positions import PyFolioPositions, write_pyfolio_tearsheet
from analyzers.tearsheet import QuantStatsTearsheet
from analyzers.tradelog import TradeLog, trade_rows_csv
from analyzers.tradestats import closed_trades, read_trade_log, realized_pnl_png, trade_histogram_png, trade_stats
