"""Presets and config files (TOML, read with the standard tomllib).

A config is a preset (`default`, `seed`) or a file that names its `base` preset and overrides
some keys. Every key is checked against the default preset, so a misspelt key is an error that
names it, not a silent no-op.

The split: `[model.split]` holds dates (the default preset's fit the embedded data), or
`model.split = "auto"` (60/20/20 % of the data's dates, resolved by jobs.periods.resolve_split once the
data is loaded). "auto" is the default for every source but the embedded data, unless the preset,
the file or the command line sets the split.
"""

from __future__ import annotations

import copy
import datetime as _dt
import tomllib
from pathlib import Path

from core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
PRESETS = ("default", "seed")
# keys whose value is free-form (a list or table the schema cannot enumerate)
_FREE = {("model", "features"), ("analyzers", "extra"), ("variants",), ("universe",)}
AUTO = "auto"


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None


def merge_config(base: dict, override: dict) -> dict:
    """`override` laid over `base`, table by table (a deep copy; neither input changes)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_keys(config: dict, schema: dict, source: str, prefix=()) -> None:
    for key, value in config.items():
        where = prefix + (key,)
        if where in _FREE or where[:1] in _FREE:
            continue
        if key not in schema:
            valid = ", ".join(sorted(schema))
            raise ConfigError(f"{source}: unknown config key '{'.'.join(where)}'; valid keys here: {valid}")
        if where == ("model", "split") and value == AUTO:
            continue
        if isinstance(schema[key], dict):
            if not isinstance(value, dict):
                also = ' or "auto"' if where == ("model", "split") else ""
                raise ConfigError(f"{source}: '{'.'.join(where)}' must be a table ([{'.'.join(where)}]){also}")
            _check_keys(value, schema[key], source, where)
        else:
            _check_type(value, schema[key], source, ".".join(where))


def _kind(value) -> str:
    """The kind of a config value as the schema (default.toml) has it: a number is int or float
    alike (cash = 1e5 is as good as 100000), a date is a string's kind (TOML dates unquoted)."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (str, _dt.date)):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _check_type(value, default, source: str, key: str) -> None:
    """ConfigError naming the key when `value` is not of the default's kind (a quoted number, a
    number where a name belongs), instead of a TypeError deep inside a run."""
    expected, got = _kind(default), _kind(value)
    if got != expected:
        raise ConfigError(
            f"{source}: '{key}' = {value!r} is {got}; it must be {expected}, like the default {key.split('.')[-1]} = "
            f"{default!r}" + (" (write it without quotes)" if got == "a string" and expected == "a number" else "")
        )


def preset_path(name: str) -> Path:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    return CONFIG_DIR / f"{name}.toml"


def load_config(preset: str = "default", path=None, overrides: dict | None = None) -> dict:
    """The merged config: the default preset, then `preset` (or the file's `base`), then the file,
    then `overrides` (from the command line)."""
    schema = _read(CONFIG_DIR / "default.toml")
    schema.setdefault("model", {}).setdefault("features", [])
    schema["base"] = ""
    schema["variants"] = {}
    schema["universe"] = {}
    file_config = {}
    source = "preset " + preset
    if path is not None:
        file_config = _read(Path(path))
        source = str(path)
        preset = file_config.get("base", preset)
    config = _read(CONFIG_DIR / "default.toml")
    preset_config = {}
    if preset != "default":
        preset_config = _read(preset_path(preset))
        _check_keys(preset_config, schema, f"preset {preset}")
        config = merge_config(config, preset_config)
    _check_keys(file_config, schema, source)
    config = merge_config(config, file_config)
    if overrides:
        _check_keys(overrides, schema, "command line")
        config = merge_config(config, overrides)
    config["preset"] = preset
    split_set = any("split" in layer.get("model", {}) for layer in (preset_config, file_config, overrides or {}))
    if config["data"].get("source", "embedded") != "embedded" and not split_set:
        config["model"]["split"] = AUTO  # the preset's dates fit the embedded data only
    return config
