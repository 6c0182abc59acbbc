"""Shared fixtures: where the real test data lives (../shared, or $FAKESCOPE_SHARED)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path() -> Path:
    return Path(os.environ.get("FAKESCOPE_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "data").is_dir():
        pytest.skip(f"shared data not found at {path} (set FAKESCOPE_SHARED)")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's in-process runs: on shared or busy runners two
    threads per process spend more time waiting than computing. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def register_model():
    """register_model(name, cls) -> name: a test architecture in the model registry for one
    test, removed again afterwards."""
    from fakescope.models.base import MODELS

    added = []

    def register(name: str, cls) -> str:
        MODELS.register(name)(cls)
        added.append(name)
        return name

    yield register
    for name in added:
        del MODELS._items[name]
