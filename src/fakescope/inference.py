"""Batched P(fake) over a dataset of face crops (evaluation and validation share it)."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .models.base import DetectorModel


@torch.inference_mode()
def predict_scores(
    model: DetectorModel, dataset: Dataset, device: torch.device | str = "cpu",
    batch_size: int = 64, num_workers: int = 0, on_output: Optional[Callable[[dict], None]] = None,
) -> np.ndarray:
    """P(fake) for every item of a dataset yielding {"image", ...}, in dataset order.
    `on_output`, if given, sees each batch's output dict (e.g. to keep its features)."""
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    scores = []
    try:
        for batch in loader:
            out = model(batch["image"].to(device))
            scores.append(torch.sigmoid(out["logits"].float()).cpu().numpy())
            if on_output is not None:
                on_output(out)
    finally:
        model.train(was_training)
    return np.concatenate(scores) if scores else np.zeros(0)
