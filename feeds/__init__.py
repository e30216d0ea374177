"""Where prices come from: the embedded dataset, CSV folders, yfinance with a cache, a fast
array-backed Backtrader feed, validation, universes. Imports nothing of the project but core/
(whose errors it re-exports)."""

from core.errors import AlphaPluginError, ArtifactError, ConfigError, DataError, DownloadError
from feeds.arraydata import ArrayData, FastArrayData, feed_frame
from feeds.broker import LeanBroker, set_slippage
from feeds.csv_folder import load_csv_folder
from feeds.embedded import CAVEATS, load_embedded
from feeds.panel import FIELDS, PricePanel, series_fingerprint
from feeds.synthetic import SYNTHETIC_LABEL, make_synthetic_universe
from feeds.universe import Membership, load_constituents
from feeds.validate import DataRepairWarning, SuspiciousDataWarning, validate_ohlcv
from feeds.yahoo import DownloadReport, download_to_cache, load_cache
