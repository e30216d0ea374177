"""The project's one small exception hierarchy.

Every message names the file, ticker, column or parameter that is wrong and says what would fix
it. It lives in core/, the leaf that imports nothing else of the project, so every package may
import it (feeds re-exports it for `from feeds import DataError`).
"""


class AlphaPluginError(Exception):
    """Base class of every error this project raises on purpose."""


class DataError(AlphaPluginError, ValueError):
    """Input prices are unusable: bad file, column, date or value."""


class ConfigError(AlphaPluginError, ValueError):
    """A parameter, preset, config key or command-line option is invalid."""


class ArtifactError(AlphaPluginError):
    """A saved model cannot be trusted or cannot be used with the data at hand."""


class DownloadError(AlphaPluginError):
    """A remote source (yfinance) returned nothing usable."""
