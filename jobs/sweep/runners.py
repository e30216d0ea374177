"""How a sweep's variants run: each in its own Cerebro (ScoreAlpha on cached scores) or all in the
compiled vector engine, in one process, local processes or Ray tasks. Workers return results and
files as bytes; only the driver writes, so the same code works on a cluster without a shared disk."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import AlphaPluginError
from jobs.backtest import run
from jobs.engines import backtest_costs, check_enough_stocks, strategy_params, universe_baseline, vector_panel
from jobs.periods import backtest_period
from jobs.sweep.report import format_number

ROOT = Path(__file__).resolve().parents[2]  # the project folder: shipped to Ray workers
MODES = ("sequential", "processes", "ray")
CONFIRM_RTOL = 1e-9  # a confirmed variant's Cerebro metrics must equal its vector metrics to this


# ----------------------------------------------------------------------------- one variant
@dataclass
class VariantTask:
    name: str
    config: dict
    scores_key: str
    params: dict = field(default_factory=dict)  # what this variant changes, for run.json


@dataclass
class VariantOutcome:
    name: str
    metrics: dict = field(default_factory=dict)
    analyzers: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # file name -> bytes
    error: str | None = None
    seconds: float = 0.0


def run_variant(task: VariantTask, data, scores_by_key: dict, options: dict | None = None) -> VariantOutcome:
    """One variant in its own Cerebro (jobs.backtest.run with precomputed scores) in a temporary folder;
    returns metrics, analyzer results and the files' bytes. Never raises: an error is returned.
    `options`: extra keywords of jobs.backtest.run shared by all variants (universe, extra_analyzers)."""
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="sweep-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the driver warns once for the base config
            out = Path(tmp) / "run"
            result = run(
                task.config, out, scores=scores_by_key[task.scores_key], progress=False, data=data, **(options or {})
            )
            files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
        if "run.json" in files:  # say where the scores came from (jobs.backtest.run assumes a --scores file)
            run_info = json.loads(files["run.json"])
            run_info.update(
                scores="the model's scores, computed once for the sweep (models/score_cache)",
                variant=task.name,
                variant_params=task.params,
            )
            files["run.json"] = (json.dumps(run_info, indent=2, default=str) + "\n").encode()
        return VariantOutcome(
            task.name, dict(result.metrics), dict(result.analyzers), files, seconds=time.perf_counter() - t0
        )
    except Exception as exc:  # noqa: BLE001 - a broken variant is reported, the others go on
        text = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, AlphaPluginError):
            text += " | " + traceback.format_exc(limit=3).strip().splitlines()[-2].strip()
        return VariantOutcome(task.name, error=text, seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- runners
def run_sequential(tasks, data, scores_by_key, progress=None, options=None) -> list[VariantOutcome]:
    outcomes = []
    for task in tasks:
        outcomes.append(run_variant(task, data, scores_by_key, options))
        _report(progress, outcomes[-1], len(outcomes), len(tasks))
    return outcomes


_WORKER_STATE: dict = {}


def _init_worker(data, scores_by_key, options):
    _WORKER_STATE.update(data=data, scores=scores_by_key, options=options)


def _run_in_worker(task):
    return run_variant(task, _WORKER_STATE["data"], _WORKER_STATE["scores"], _WORKER_STATE["options"])


def run_processes(tasks, data, scores_by_key, workers: int = 2, progress=None, options=None) -> list[VariantOutcome]:
    """Local processes without Ray; each worker receives the data and scores once."""
    import concurrent.futures as cf

    from core.pool import process_pool

    # fork hands the panel over without pickling; the workers never run torch, so forking after
    # torch was imported is safe here
    by_name = {}
    with process_pool(workers, len(tasks), "fork", _init_worker, (data, scores_by_key, options)) as pool:
        futures = {pool.submit(_run_in_worker, t): t for t in tasks}
        for done, future in enumerate(cf.as_completed(futures), 1):
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died
                outcome = VariantOutcome(task.name, error=f"worker failed: {type(exc).__name__}: {exc}")
            by_name[task.name] = outcome
            _report(progress, outcome, done, len(tasks))
    return [by_name[t.name] for t in tasks]


def run_in_cerebro(tasks, data, scores_by_key, mode: str, workers: int, ray_address, progress, options):
    """Each task in its own Cerebro, by `mode`: sequential, local processes or Ray."""
    if mode == "sequential":
        return run_sequential(tasks, data, scores_by_key, progress, options)
    if mode == "processes":
        return run_processes(tasks, data, scores_by_key, workers, progress, options)
    return run_ray(tasks, data, scores_by_key, ray_address, num_cpus=workers, progress=progress, options=options)


def _ray_runtime_env(address: str | None) -> dict:
    if address:  # a real cluster: ship the project's code (not results, caches or models)
        return {
            "working_dir": str(ROOT),
            "excludes": ["results/", "cache/", "models/store/", ".git/", ".venv/", "**/__pycache__/"],
        }
    return {"env_vars": {"PYTHONPATH": str(ROOT)}}


def run_ray(
    tasks, data, scores_by_key, address: str | None = None, num_cpus: int = 2, progress=None, options=None
) -> list[VariantOutcome]:
    """Ray tasks: the data and scores go into the object store once; each task builds its own
    Cerebro and returns its results and files. A local instance unless `address` is given."""
    from core.pool import ray_session

    with ray_session(num_cpus, address, runtime_env=_ray_runtime_env(address)) as ray:
        data_ref, scores_ref, options_ref = ray.put(data), ray.put(scores_by_key), ray.put(options)
        remote = ray.remote(num_cpus=1, max_retries=0)(run_variant)
        pending = {remote.remote(t, data_ref, scores_ref, options_ref): t for t in tasks}
        by_name, done = {}, 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - the worker died (run_variant itself never raises)
                outcome = VariantOutcome(task.name, error=f"ray task failed: {type(exc).__name__}: {exc}")
            by_name[task.name] = outcome
            done += 1
            _report(progress, outcome, done, len(tasks))
        return [by_name[t.name] for t in tasks]


def _report(progress, outcome: VariantOutcome, done: int, total: int) -> None:
    if progress:
        state = f"error: {outcome.error}" if outcome.error else f"Sharpe {format_number(outcome.metrics.get('sharpe'))}"
        progress(f"  [{done}/{total}] {outcome.name}: {state} ({outcome.seconds:.1f}s)")


@dataclass
class VariantReturns:
    """Every variant's daily returns, float32, on one calendar (NaN where a variant has no day):
    the days x variants matrix that selection statistics (PBO, selection vs holdout) start from."""

    dates: pd.DatetimeIndex
    names: list
    values: np.ndarray  # float32 [days, variants]

    def matrix(self, start=None, end=None, names=None) -> pd.DataFrame:
        """Returns of `names` (default: all) over [start, end] as a days x variants frame."""
        rows = slice(None)
        if start is not None or end is not None:
            lo = 0 if start is None else self.dates.searchsorted(pd.Timestamp(start), side="left")
            hi = len(self.dates) if end is None else self.dates.searchsorted(pd.Timestamp(end), side="right")
            rows = slice(lo, hi)
        cols = list(range(len(self.names))) if names is None else [self.names.index(n) for n in names]
        return pd.DataFrame(self.values[rows][:, cols], index=self.dates[rows], columns=[self.names[c] for c in cols])

    def between(self, start=None, end=None) -> "VariantReturns":
        """The rows of [start, end]: a view (of the file, for a np.memmap), not a copy."""
        lo = 0 if start is None else self.dates.searchsorted(pd.Timestamp(start), side="left")
        hi = len(self.dates) if end is None else self.dates.searchsorted(pd.Timestamp(end), side="right")
        return VariantReturns(self.dates[lo:hi], self.names, self.values[lo:hi])

    def select(self, names) -> "VariantReturns":
        """The columns of `names` in that order (itself when they are all of its columns, in order)."""
        names = list(names)
        if names == self.names:
            return self
        index = {n: c for c, n in enumerate(self.names)}
        return VariantReturns(self.dates, names, self.values[:, [index[n] for n in names]])

    def equity(self, name: str, cash: float, start=None, end=None) -> pd.Series:
        """A variant's equity curve over [start, end] rebuilt from its returns (float32 precision:
        for plots). A sweep's periods are separate runs: rebuild one period at a time."""
        r = self.matrix(start, end, names=[name])[name].dropna().astype("float64")
        return cash * (1.0 + r).cumprod()


MEMORY_BOUND = 1 << 30  # bytes: a returns matrix larger than this goes to a float32 file, not memory


@dataclass
class Spill:
    """Where a sweep's days x variants returns matrices live: in memory up to `bound` bytes each,
    beyond it in float32 files (np.memmap) in a hidden folder beside the results folder `name`,
    made on first need and removed by close() (a mapping already handed out stays readable on
    POSIX). The folder is a core.io temporary of `name` (`.<name>.tmp-<host>-<pid>-<random>.returns`),
    so a run killed with it on disk has it removed by the next write of that name."""

    bound: int = MEMORY_BOUND
    root: Path | None = None  # None: always in memory
    name: str = "sweep"
    folder: Path | None = None

    def on_disk(self, shape) -> bool:
        return self.root is not None and 4 * shape[0] * shape[1] > self.bound

    def array(self, shape) -> np.ndarray:
        """A float32 array of NaN of `shape`."""
        if not self.on_disk(shape):
            return np.full(shape, np.nan, dtype="float32")
        if self.folder is None:
            from core.io import temp_name

            Path(self.root).mkdir(parents=True, exist_ok=True)
            self.folder = Path(self.root) / temp_name(self.name, suffix=".returns")
            self.folder.mkdir()
        fd, path = tempfile.mkstemp(dir=self.folder, suffix=".f32")
        os.close(fd)
        values = np.memmap(path, dtype="float32", mode="w+", shape=shape)
        values[:] = np.nan  # in place: no temporary of the matrix's size
        return values

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class EngineMismatchError(AlphaPluginError):
    """A variant replayed in Cerebro did not give the vector engine's metrics."""


# ----------------------------------------------------------------------------- the vector engine
def metrics_mismatch(vector: dict, cerebro: dict) -> str | None:
    """None when every metric agrees (numbers to CONFIRM_RTOL), else the first difference. The
    notes of a run that did not trade (jobs.backtest.with_notes) are text, not a metric."""
    vector, cerebro = ({k: v for k, v in m.items() if k != "notes"} for m in (vector, cerebro))
    if set(vector) != set(cerebro):
        return f"metric keys differ: {sorted(set(vector) ^ set(cerebro))}"
    for key, theirs in cerebro.items():
        ours = vector[key]
        if isinstance(theirs, float) and isinstance(ours, (int, float)):
            if not math.isclose(ours, theirs, rel_tol=CONFIRM_RTOL, abs_tol=1e-12):
                return f"{key}: vector {ours!r} vs Cerebro {theirs!r}"
        elif ours != theirs:
            return f"{key}: vector {ours!r} vs Cerebro {theirs!r}"
    return None


@dataclass
class VectorTask:
    name: str
    panel_key: str
    params: dict
    cash: float
    commission: float
    slippage: float = 0.0


_VECTOR_STATE: dict = {}


def vector_panels(tasks, data, scores_by_key, universe) -> dict:
    """{scores key: (panel, variant-independent metrics)}: the shared arrays, built once per key."""
    panels = {}
    for task in tasks:
        if task.scores_key in panels:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the driver warned once for this period already
            start, end = backtest_period(task.config, data)
        panel = vector_panel(data, scores_by_key[task.scores_key], start, end, universe)
        from strategies.vector import panel_benchmark_metrics

        fixed = {**panel_benchmark_metrics(panel), **universe_baseline(data.prices, panel.dates)}
        panels[task.scores_key] = (panel, fixed)
    return panels


def run_vector_chunk(chunk: list, panels: dict) -> list:
    """Simulate a chunk of VectorTasks; [(name, metrics, float32 returns or None, error)]."""
    from analyzers import daily_returns
    from strategies.vector import simulate_prepared

    out = []
    for task in chunk:
        try:
            panel, fixed = panels[task.panel_key]
            check_enough_stocks(len(panel.tickers), task.params, panel.dates[0], panel.dates[-1])
            result = simulate_prepared(
                panel,
                task.params,
                task.cash,
                task.commission,
                slippage=task.slippage,
                trade_log=False,
                benchmark_metrics={k: v for k, v in fixed.items() if k.startswith("benchmark_")},
            )
            metrics = {**result.metrics, **fixed}
            metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
            returns = daily_returns(result.equity, task.cash).to_numpy(dtype="float32")
            out.append((task.name, metrics, returns, None))
        except Exception as exc:  # noqa: BLE001 - a broken variant is reported, the others go on
            out.append((task.name, {}, None, f"{type(exc).__name__}: {exc}"))
    return out


def _vector_worker_chunk(chunk):
    return run_vector_chunk(chunk, _VECTOR_STATE["panels"])


def run_vector_variants(
    tasks,
    data,
    scores_by_key,
    universe,
    mode="sequential",
    workers=2,
    ray_address=None,
    progress=None,
    label: str = "",
    spill: "Spill | None" = None,
):
    """Every variant on the vector engine: (outcomes, VariantReturns with one column per task, NaN
    for a broken one). The panels (prices, scores, ranks) are built once and shared: inherited by
    forked processes, or put in Ray's object store once. Each chunk's returns go into the matrix as
    the chunk comes back (`spill`: in memory up to its bound, else a float32 file), so no list of
    every variant's returns is ever held."""
    t0 = time.perf_counter()
    panels = vector_panels(tasks, data, scores_by_key, universe)
    vtasks = []
    for task in tasks:  # the costs of [backtest], as jobs.backtest.run gives them to Cerebro
        costs = backtest_costs(task.config, data)
        params = {**strategy_params(task.config), **costs.strategy_params()}
        cash = float(task.config["backtest"]["cash"])
        vtasks.append(VectorTask(task.name, task.scores_key, params, cash, costs.commission, costs.slippage))
    dates = pd.DatetimeIndex([])
    for panel, _ in panels.values():
        dates = dates.union(panel.dates)
    values = (spill or Spill()).array((len(dates), len(tasks)))
    rows = {key: dates.get_indexer(panel.dates) for key, (panel, _) in panels.items()}
    column = {t.name: (c, rows[t.panel_key]) for c, t in enumerate(vtasks)}
    found = {}
    for chunk in iter_vector_chunks(vtasks, panels, mode, workers, ray_address):
        for name, metrics, returns, error in chunk:
            found[name] = (metrics, error)
            if returns is not None:
                c, at = column[name]
                values[at, c] = returns
    seconds = (time.perf_counter() - t0) / max(1, len(tasks))
    outcomes = [VariantOutcome(t.name, found[t.name][0], error=found[t.name][1], seconds=seconds) for t in tasks]
    if progress:
        ok = sum(o.error is None for o in outcomes)
        progress(
            f"vector engine{' (' + label + ' period)' if label else ''}: {len(tasks)} variants ({ok} ok) in "
            f"{time.perf_counter() - t0:.1f}s"
        )
    return outcomes, VariantReturns(dates, [t.name for t in tasks], values)


def warm_vector_engine() -> threading.Thread:
    """Compile the vector simulator in a thread of this process, started before the models: on a
    fresh clone (no numba cache) the compile is, after the folds, the first sweep's largest cost,
    and this process only waits while the folds train in their own processes. Join the thread
    before anything forks (the vector and Cerebro pools fork); its failure is left for the real
    simulation to report."""
    thread = threading.Thread(target=_compile_vector, name="vector-compile", daemon=True)
    thread.start()
    return thread


def _compile_vector() -> None:
    try:
        from strategies.vector import simulate

        index = pd.bdate_range("2020-01-01", periods=20)
        prices = {t: pd.DataFrame({"open": 10.0, "close": 11.0, "volume": 1.0}, index=index) for t in "AB"}
        scores = pd.DataFrame({"A": 0.5, "B": -0.5}, index=index)
        simulate(prices, scores, {"top_k": 1}, 10_000.0, 0.0)  # the sweep's own types: one compile
    except Exception:  # noqa: BLE001 - the sweep's first simulation compiles again and says what failed
        pass


CHUNK_VARIANTS = 500  # variants per chunk at most: a chunk's returns (~6 kB a variant a period) stay small


def vector_chunks(vtasks: list, mode: str, workers: int) -> list[list]:
    """The tasks in chunks: at least 4 per worker (load balance), at most CHUNK_VARIANTS each."""
    n_chunks = 1 if mode == "sequential" else max(1, workers) * 4
    n_chunks = max(n_chunks, math.ceil(len(vtasks) / CHUNK_VARIANTS))
    return [vtasks[i::n_chunks] for i in range(n_chunks) if vtasks[i::n_chunks]]


def iter_vector_chunks(
    vtasks: list, panels: dict, mode: str = "sequential", workers: int = 2, ray_address: str | None = None
):
    """Yield each chunk's [(name, metrics, float32 returns or None, error)] as it is done: in this
    process, forked local processes (which inherit the panels) or Ray tasks (panels put once)."""
    chunks = vector_chunks(vtasks, mode, workers)
    if mode == "sequential":
        for chunk in chunks:
            yield run_vector_chunk(chunk, panels)
    elif mode == "processes":
        from core.pool import process_pool

        # the first chunk here: it compiles the simulator (numba) once, and forked workers inherit
        # the compiled code instead of each compiling it again (a fresh clone has no numba cache)
        yield run_vector_chunk(chunks[0], panels)
        _VECTOR_STATE["panels"] = panels  # forked workers inherit it: no pickling of the arrays
        # (where there is no fork, each spawned worker is handed the panels once)
        try:
            with process_pool(workers, len(chunks), "fork", _VECTOR_STATE.update, ({"panels": panels},)) as pool:
                yield from pool.map(_vector_worker_chunk, chunks[1:])
        finally:
            _VECTOR_STATE.clear()
    else:
        from core.pool import ray_session

        with ray_session(workers, ray_address, runtime_env=_ray_runtime_env(ray_address)) as ray:
            panels_ref = ray.put(panels)  # once: every task reads the same arrays
            remote = ray.remote(num_cpus=1, max_retries=0)(run_vector_chunk)
            pending = [remote.remote(chunk, panels_ref) for chunk in chunks]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])


def simulate_variants(
    vtasks: list, panels: dict, mode: str = "sequential", workers: int = 2, ray_address: str | None = None
) -> dict:
    """{name: (metrics, float32 returns, error)} of VectorTasks on shared panels (iter_vector_chunks)."""
    return {
        name: (metrics, returns, error)
        for chunk in iter_vector_chunks(vtasks, panels, mode, workers, ray_address)
        for name, metrics, returns, error in chunk
    }


def variant_returns(columns: dict) -> VariantReturns:
    """{variant: (dates, daily returns)} as one VariantReturns on the union of the dates (NaN where
    a variant has no day)."""
    names = list(columns)
    dates = pd.DatetimeIndex([])
    for index, _ in columns.values():
        dates = dates.union(index)
    values = np.full((len(dates), len(names)), np.nan, dtype="float32")
    for c, (index, returns) in enumerate(columns.values()):
        values[dates.get_indexer(index), c] = returns
    return VariantReturns(dates, names, values)
