"""Batched P(fake) over a dataset of face crops (evaluation and validation share it)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .models.base import DetectorModel


@torch.inference_mode()
def predict_scores(
    model: DetectorModel, dataset: Dataset, device: torch.device | str = "cpu",
    batch_size: int = 64, num_workers: int = 0,
) -> np.ndarray:
    """P(fake) for every item of a dataset yielding {"image", ...}, in dataset order."""
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    scores = []
    for batch in loader:
        logits = model(batch["image"].to(device))["logits"]
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
    model.train(was_training)
    return np.concatenate(scores) if scores else np.zeros(0)
