"""The zoo: every model behind the one interface (models.base), by name.

    make_model("lightgbm", ModelConfig(...)).fit(prices, benchmark)
    load_any("models/store/...")     # any saved model or walk-forward bundle

To add a model: subclass models.base.BaseAlphaModel (or models.train.TorchNetModel), give it a
NAME and KIND, and list it in ZOO below.
"""

from __future__ import annotations

from core.errors import ArtifactError, ConfigError


def zoo() -> dict:
    from models.baselines import LightGBMModel, LogisticModel, MLPModel, MomentumModel, RandomModel
    from models.train import AlphaModel

    return {cls.NAME: cls for cls in (AlphaModel, LogisticModel, LightGBMModel, MLPModel, MomentumModel, RandomModel)}


MODEL_NAMES = ("lstm", "logistic", "lightgbm", "mlp", "momentum", "random")


def model_class(name: str | None, where: str = "") -> type:
    classes = zoo()
    if name is None:
        name = "lstm"  # artifacts written before the zoo hold the LSTM
    if name not in classes:
        raise (
            ArtifactError(f"{where}: model {name!r} is not one of the zoo's {sorted(classes)}")
            if where
            else ConfigError(f"model {name!r} is unknown; choose one of {', '.join(MODEL_NAMES)}")
        )
    return classes[name]


def make_model(name: str, config=None, **params):
    if name not in MODEL_NAMES:
        raise ConfigError(f"--model {name!r} is unknown; choose one of {', '.join(MODEL_NAMES)}")
    return model_class(name)(config, **params)


def artifact_kinds() -> tuple:
    return tuple(cls.KIND for cls in zoo().values())


def model_from_state(state: dict, where: str = "state"):
    """Any zoo model from its state() (the model named in its meta says which class)."""
    return model_class(state["meta"].get("model"), where).from_state(state, where=where)


def load_model(path):
    """Any zoo model from its saved directory (models.artifact checks the files)."""
    from models.artifact import read_artifact

    return model_from_state(read_artifact(path, artifact_kinds()), where=str(path))
