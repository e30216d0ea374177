"""The leaf every part may use: the error hierarchy, atomic writes, Backtrader day numbers and lean
line bookkeeping. Imports nothing of the project; knows nothing of prices, models or strategies."""

from core.errors import AlphaPluginError, ArtifactError, ConfigError, DataError, DownloadError
