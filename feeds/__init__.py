"""Where prices come from: the embedded dataset, CSV folders, yfinance with a cache, a fast
array-backed Backtrader feed, validation. Imports nothing else of the project."""
from feeds.errors import AlphaPluginError, ArtifactError, ConfigError, DataError, DownloadError
from feeds.panel import FIELDS, PricePanel, series_fingerprint
from feeds.embedded import CAVEATS, load_embedded
