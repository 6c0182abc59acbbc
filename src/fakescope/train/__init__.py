"""Training: `fakescope train CONFIG.yaml` (see config.py for the recipe format).

The heavy modules (torch's tensorboard writer, albumentations) load only when a
run starts, so `import fakescope` and the other commands stay fast.
"""
from .config import ConfigError, TrainConfig, load_config

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "load_config", "train"]


def train(config: TrainConfig, resume: bool = False, console=None):
    """Run (or continue) the training `config` describes; returns a TrainResult."""
    from .trainer import train as _train

    return _train(config, resume=resume, console=console)


def __getattr__(name):
    if name == "TrainResult":
        from .trainer import TrainResult

        return TrainResult
    raise AttributeError(name)
