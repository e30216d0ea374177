"""Backtrader's own chart (`cerebro.plot()`), saved as a PNG without a display.

Backtrader's plot module forces the TkAgg backend on import, which fails without a display; the
chart is drawn here by `backtrader.plot.Plot` after switching matplotlib to Agg. With hundreds
of feeds `cerebro.plot()` draws one panel per data; here only the traded stocks (or the tickers
given) are shown, at most `max_datas`, by setting `plotinfo.plot = False` on the others for the
duration of the call (their indicators on own panels disappear with them; observers stay).
"""

from __future__ import annotations

from pathlib import Path

import backtrader as bt

from core.errors import ConfigError
from core.io import atomic_path


def traded_datas(strategy) -> list:
    """Datas the strategy traded (a closed or open trade), most trades first, then by order added."""
    counts = []
    for i, data in enumerate(strategy.datas):
        trades = strategy._trades.get(data, {})  # data -> {tradeid: [Trade, ...]}
        n = sum(len(v) for v in trades.values())
        if n or strategy.getposition(data).size:
            counts.append((-n, i, data))
    return [d for _, _, d in sorted(counts, key=lambda t: (t[0], t[1]))]


def save_bt_plot(
    run,
    path,
    tickers=None,
    max_datas: int = 6,
    width: float = 16,
    height: float = 9,
    dpi: int = 100,
    style: str = "line",
    **plot_kwargs,
) -> Path:
    """Draw Backtrader's chart of a finished run and save it as a PNG.

    run: a Cerebro after `run()` (its first strategy is drawn) or a Strategy instance.
    tickers: data names to show; default the traded ones (see `traded_datas`).
    max_datas: cap on the number of data panels. Extra keywords go to `backtrader.plot.Plot`
    (its PlotScheme: `volume=False`, `barup=...`). Returns the path written.
    """
    strategy = _strategy_of(run)
    import backtrader.plot as btplot  # sets TkAgg on import ...
    import matplotlib

    matplotlib.use("Agg")  # ... so switch to Agg after it: no display needed
    import matplotlib.pyplot as plt

    if tickers is None:
        shown = traded_datas(strategy)
    else:
        by_name = {d._name: d for d in strategy.datas}
        unknown = [t for t in tickers if t not in by_name]
        if unknown:
            raise ConfigError(
                f"save_bt_plot(tickers=...): no data named {unknown}; the run has {sorted(by_name)[:10]}..."
            )
        shown = [by_name[t] for t in tickers]
    if not shown:  # nothing traded: show the first data, not 500
        shown = list(strategy.datas[:1])
    shown = shown[:max_datas]
    shown_ids = {id(d) for d in shown}  # by identity: a data's == builds a line operation

    saved = {d: d.plotinfo.plot for d in strategy.datas}
    try:
        for d in strategy.datas:
            d.plotinfo.plot = id(d) in shown_ids
        plotter = btplot.Plot(style=style, **plot_kwargs)
        figs = plotter.plot(strategy, figid=0, numfigs=1, iplot=False)
        fig = figs[0]
        fig.set_size_inches(width, height)
        _date_axis(fig, plotter.pinf.xreal)
        path = Path(path)
        with atomic_path(path, suffix=path.suffix or ".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
        for f in figs:
            plt.close(f)
    finally:
        for d, flag in saved.items():
            d.plotinfo.plot = flag
    return path


def _date_axis(fig, xreal):
    """Dates under the bottom panel. Backtrader plots against bar numbers and hides tick labels
    with setp on the Text objects, which current matplotlib re-creates at draw time, so the saved
    chart had no dates; put them back with tick_params and a bar-number -> date formatter."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def label(x, pos=None):
        i = int(round(x))
        return bt.num2date(xreal[i]).strftime("%Y-%m-%d") if 0 <= i < len(xreal) else ""

    axes = fig.axes
    if not axes or not len(xreal):
        return
    bottom = min(axes, key=lambda ax: ax.get_position().y0)
    for ax in axes:
        ax.tick_params(axis="x", labelbottom=ax is bottom)
    # The panels share x, hence the locator and formatter too.
    bottom.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    bottom.xaxis.set_major_formatter(FuncFormatter(label))
    bottom.tick_params(axis="x", labelrotation=30, labelsize=9)


def _strategy_of(run):
    if isinstance(run, bt.Strategy):
        return run
    if isinstance(run, bt.Cerebro):
        if not getattr(run, "runstrats", None):
            raise ConfigError("save_bt_plot(cerebro): call cerebro.run() first; there is no finished strategy to draw.")
        first = run.runstrats[0][0]
        # Under optstrategy runstrats holds OptReturn objects, which cannot be drawn.
        if not isinstance(first, bt.Strategy):
            raise ConfigError(
                "save_bt_plot: the run was optimised (optreturn); pass a Strategy from a single run instead."
            )
        return first
    if isinstance(run, (list, tuple)) and run:
        return _strategy_of(run[0])
    raise ConfigError(f"save_bt_plot(run={type(run).__name__}): pass a Cerebro after run() or a Strategy instance.")
