"""Y-shaped autoencoder (ClassNSeg, Nguyen et al., BTAS 2019): the detector contract, the
latent-half classification and its fake logit, the class-half decoding, the activation /
reconstruction losses and their options, parameter count, one training step (also through
the real trainer), ONNX, the recipes, and the import of the published checkpoints, which
must reproduce the authors' results on their real / Face2Face pair."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from model_contract import check_one_step_lowers_loss, check_onnx_matches, check_outputs, check_parameter_count
from PIL import Image

from fakescope.errors import ModelLoadError
from fakescope.models import build_model, load_checkpoint
from fakescope.models.y_autoencoder import (
    FAKE_HALF,
    IMAGENET_MEAN,
    IMAGENET_STD,
    REAL_HALF,
    YAutoencoder,
    classnseg_files,
    classnseg_key,
    load_classnseg,
)

SMALL = 64  # fully convolutional: 64 px gives a 4 x 4 latent, and a 64 x 64 mask
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "zoo"
WEIGHTS = "weights/classnseg"
PAIR = "data/classnseg-pair"

# Reference parameter count: the published ClassNSeg state dicts (encoder_46.pt,
# decoder_46.pt), weights and biases only (running statistics and counters are buffers):
#   encoder convs 3-8-8-16-16-32-32-64-64-128, 3x3 + bias: 224 + 584 + 1168 + 2320 + 4640
#     + 9248 + 18496 + 36928 + 73856 = 147,464; its 9 BN affine: 2 x 368 = 736 -> 148,200
#   decoder trunk 128-64-64-32-32: 73,792 + 36,928 + 18,464 + 9,248 = 138,432, BN 2 x 192 = 384
#   segmentation head 32-16-16-8-8-2: 4624 + 2320 + 1160 + 584 + 146 = 8,834, BN 2 x 48 = 96
#   reconstruction head 32-16-16-8-8-3: 4624 + 2320 + 1160 + 584 + 219 = 8,907, BN 96
#   total 148,200 + 138,432 + 384 + 8,834 + 96 + 8,907 + 96 = 304,949 (no classifier layer to swap)
PUBLISHED_PARAMETERS = 304_949
PUBLISHED_TENSORS = 63 + 88  # state-dict entries of the encoder and decoder files


def _model(**kwargs) -> YAutoencoder:
    torch.manual_seed(0)
    return build_model("y_autoencoder", **kwargs)


def _normalise(rgb01: torch.Tensor) -> torch.Tensor:
    return (rgb01 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


# ---------------------------------------------------------------------------- contract


def test_outputs_follow_the_contract_at_small_and_native_size():
    model = _model()
    out = check_outputs(model, batch=2, size=SMALL, feature_dim=128, mask_shape=(SMALL, SMALL))
    assert out["reconstruction"].shape == (2, 3, SMALL, SMALL)
    assert out["reconstruction"].abs().max() <= 1.0  # tanh
    assert out["activations"].shape == (2, 2)
    out = check_outputs(model, batch=1, size=256, feature_dim=128, mask_shape=(256, 256))
    assert model.cam_layer() is model.encoder[26]  # the 128-channel latent after its ReLU


def test_parameter_count_is_the_published_one():
    model = _model()
    assert check_parameter_count(model, PUBLISHED_PARAMETERS, tolerance=0.0) == PUBLISHED_PARAMETERS
    assert len(model.state_dict()) == PUBLISHED_TENSORS


def test_profile_counts_gflops_on_the_meta_device():
    from fakescope.models.profile import profile

    info = profile("y_autoencoder")
    assert info["parameters"] == PUBLISHED_PARAMETERS and info["input_size"] == 256
    assert info["gflops"] is not None and 0.2 < info["gflops"] < 0.5


def test_one_step_lowers_loss_with_and_without_the_trainers_bce():
    check_one_step_lowers_loss(_model(), size=SMALL, batch=2)
    check_one_step_lowers_loss(_model(classification_bce=False, loss_normalise=True), size=SMALL, batch=2)


def test_onnx_matches_pytorch():
    check_onnx_matches(_model(), size=SMALL)


# ---------------------------------------------------------------------------- paper-specific parts


def test_fake_logit_is_the_authors_decision_and_score():
    """train.py: real iff mean|half 1| >= mean|half 0|; its score softmax([zero, one])[1] is
    P(original), so P(fake) = sigmoid(a_fake - a_real) and the logit's sign is their argmax."""
    model = _model().eval()
    torch.manual_seed(3)
    # a latent whose halves differ from face to face (an untrained encoder's barely do)
    scale = torch.rand(6, 2, 1, 1, 1) * 2
    crafted = (torch.randn(6, 2, 64, 4, 4).relu() * scale).flatten(1, 2)
    latent = {"z": crafted}
    model.encoder.register_forward_hook(lambda m, i, o: crafted)
    with torch.no_grad():
        out = model(torch.randn(6, 3, SMALL, SMALL))
    assert 0 < int((out["logits"] > 0).sum()) < 6  # both decisions occur in this batch
    halves = latent["z"].reshape(6, 2, 64, -1)
    zero, one = halves[:, 0].abs().mean(dim=(1, 2)), halves[:, 1].abs().mean(dim=(1, 2))
    torch.testing.assert_close(out["activations"], torch.stack([zero, one], 1))
    authors_p_real = torch.softmax(torch.stack([zero, one], 1), dim=1)[:, 1]
    torch.testing.assert_close(torch.sigmoid(out["logits"]), 1 - authors_p_real)
    authors_fake = ~(one >= zero)
    assert torch.equal(out["logits"] > 0, authors_fake)
    torch.testing.assert_close(out["features"], latent["z"].abs().mean(dim=(2, 3)))
    assert (FAKE_HALF, REAL_HALF) == (0, 1)


def _decoder_input(model, x):
    seen = {}
    handle = model.shared.register_forward_pre_hook(lambda m, args: seen.setdefault("z", args[0].detach()))
    out = model(x)
    handle.remove()
    return out, seen["z"]


def test_decoder_sees_only_the_predicted_half_in_eval_and_the_true_half_in_training():
    model = _model()
    x = torch.randn(4, 3, SMALL, SMALL)
    model.eval()
    with torch.no_grad():
        out, z = _decoder_input(model, x)
    fake = out["logits"] > 0
    for b in range(4):
        kept, dropped = (slice(0, 64), slice(64, 128)) if fake[b] else (slice(64, 128), slice(0, 64))
        assert z[b, dropped].abs().sum() == 0 and z[b, kept].abs().sum() > 0
    # training: labels given through augment_training_batch for this batch tensor pick the half
    model.train()
    labels = (~fake).float()  # the opposite of the prediction, so the choice is visible
    images = model.augment_training_batch(x, labels)
    assert images is x
    with torch.no_grad():
        _, z = _decoder_input(model, images)
    for b in range(4):
        dropped = slice(64, 128) if labels[b] == 1 else slice(0, 64)
        assert z[b, dropped].abs().sum() == 0
    # another tensor (even equal values) is not that batch: back to the prediction
    with torch.no_grad():
        out2, z2 = _decoder_input(model, x.clone())
    for b in range(4):
        dropped = slice(64, 128) if out2["logits"][b] > 0 else slice(0, 64)
        assert z2[b, dropped].abs().sum() == 0
    model.eval()
    assert model._true_labels is None
    off = _model(decode_true_class=False).train()
    off.augment_training_batch(x, labels)
    with torch.no_grad():
        out3, z3 = _decoder_input(off, x)
    assert all(z3[b, 64:].abs().sum() == 0 for b in range(4) if out3["logits"][b] > 0)


def test_mask_is_the_log_softmax_difference_of_the_segmentation_channels():
    model = _model().eval()
    seg = {}
    model.segmenter.register_forward_hook(lambda m, i, o: seg.setdefault("z", o))
    with torch.no_grad():
        out = model(torch.randn(2, 3, SMALL, SMALL))
    probs = torch.softmax(seg["z"], dim=1)
    torch.testing.assert_close(torch.sigmoid(out["mask"])[:, 0], probs[:, 1])
    # the trainer's per-pixel BCE on that logit is the 2-way softmax cross-entropy
    target = (torch.rand(2, SMALL, SMALL) > 0.5).long()
    bce = F.binary_cross_entropy_with_logits(out["mask"][:, 0], target.float())
    torch.testing.assert_close(bce, F.cross_entropy(seg["z"], target))


def test_activation_loss_follows_the_paper():
    model = _model()
    labels = torch.tensor([1.0, 0.0])  # fake, real
    perfect = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (a_fake, a_real)
    assert model.activation_loss(perfect, labels).item() == 0.0
    assert model.activation_loss(perfect.flip(1), labels).item() == pytest.approx(2.0)
    chance = torch.full((2, 2), 0.5)
    assert model.activation_loss(chance, labels).item() == pytest.approx(1.0)
    assert model.activation_loss(torch.zeros(2, 2), labels).item() == pytest.approx(1.0)
    # the authors' form, with their y = 1 for real: |one - y| + |zero - (1 - y)|, summed / B
    acts = torch.tensor([[0.3, 0.9], [1.4, 0.2]])
    y = 1 - labels
    authors = ((acts[:, 1] - y).abs() + (acts[:, 0] - (1 - y)).abs()).sum() / 2
    torch.testing.assert_close(model.activation_loss(acts, labels), authors)


def test_training_losses_weights_normalisation_and_bce_cancellation():
    torch.manual_seed(0)
    x = torch.randn(2, 3, SMALL, SMALL)
    labels = torch.tensor([0.0, 1.0])
    model = _model(act_weight=2.0, rec_weight=0.5).eval()
    out = model(x)
    terms = model.training_losses(out, labels)
    assert set(terms) == {"activation", "reconstruction"}
    torch.testing.assert_close(terms["activation"], 2.0 * model.activation_loss(out["activations"], labels))
    torch.testing.assert_close(terms["reconstruction"], 0.5 * F.mse_loss(out["reconstruction"], x))
    # loss_normalise: L_rec relative to predicting a zero image (which scores exactly 1)
    norm = _model(loss_normalise=True)
    torch.testing.assert_close(norm.reconstruction_loss(out["reconstruction"], x),
                               F.mse_loss(out["reconstruction"], x) / x.pow(2).mean())
    assert norm.reconstruction_loss(torch.zeros_like(x), x).item() == pytest.approx(1.0)
    # classification_bce=False: the trainer's BCE + ours = the paper's terms alone, gradients included
    paper = _model(classification_bce=False).eval()
    out = paper(x)
    terms = paper.training_losses(out, labels)
    trainer_total = F.binary_cross_entropy_with_logits(out["logits"].float(), labels) + sum(terms.values())
    paper_total = terms["activation"] + terms["reconstruction"]
    torch.testing.assert_close(trainer_total, paper_total)
    g1 = torch.autograd.grad(trainer_total, paper.encoder[0].weight, retain_graph=True)[0]
    g2 = torch.autograd.grad(paper_total, paper.encoder[0].weight)[0]
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-7)


def test_bce_does_not_move_the_activation_loss_minimum():
    """The docstring's claim: with act_weight 1, L_act + BCE(a_fake - a_real) is still
    minimised at (a_fake, a_real) = (y, 1 - y), on a grid around it."""
    model = _model()
    grid = torch.linspace(0.0, 2.0, 201)
    a_fake, a_real = torch.meshgrid(grid, grid, indexing="ij")
    acts = torch.stack([a_fake.flatten(), a_real.flatten()], 1)
    for y in (0.0, 1.0):
        labels = torch.full((acts.shape[0],), y)
        per_sample = ((acts[:, 0] - labels).abs() + (acts[:, 1] - (1 - labels)).abs()
                      + F.binary_cross_entropy_with_logits(acts[:, 0] - acts[:, 1], labels, reduction="none"))
        best = acts[per_sample.argmin()]
        torch.testing.assert_close(best, torch.tensor([y, 1 - y]))


def test_through_the_trainer_the_decoder_gets_the_true_labels(tmp_path, shared_dir, monkeypatch):
    """One real training run (2 steps, 64 px, SBI masks from the ellipse fallback): the
    labels stashed by augment_training_batch reach every training forward."""
    from fakescope.train import train
    from fakescope.train.config import load_config

    root = shared_dir / "data/ffpp-crops"
    rows = list(csv.DictReader(open(root / "manifest.csv", newline="")))
    reals = [str(root / r["path"]) for r in rows if r["label"] == "0"][:6]
    fakes = [str(root / r["path"]) for r in rows if r["label"] == "1"][:2]
    for name, items in (("train.csv", [(p, "0") for p in reals[:4]]), ("val.csv", [(p, "0") for p in reals[4:]]
                                                                         + [(p, "1") for p in fakes])):
        with open(tmp_path / name, "w", newline="") as handle:
            csv.writer(handle).writerows([("path", "label"), *items])
    (tmp_path / "landmarks.json").write_text(json.dumps({p: None for p in reals}))
    recipe = yaml.safe_load((CONFIGS / "y_autoencoder.yaml").read_text())
    recipe["data"]["train"] = {"manifest": "train.csv", "synthesis": {"kind": "sbi", "p_fake": 0.5,
                                                                      "landmarks_json": "landmarks.json"}}
    recipe["data"]["val"] = {"manifest": "val.csv"}
    recipe["data"].update(batch_size=2, num_workers=0)
    recipe.update(output="run", preprocess={"input_size": SMALL})
    recipe["train"].update(epochs=1, device="cpu", amp=False)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(recipe))

    decoded = []
    original = YAutoencoder._decode_as_fake

    def spy(self, x, logits):
        result = original(self, x, logits)
        if self.training:
            stash = self._true_labels
            decoded.append(stash is not None and stash[0] == x.data_ptr() and torch.equal(result, stash[2]))
        return result

    monkeypatch.setattr(YAutoencoder, "_decode_as_fake", spy)
    result = train(load_config(tmp_path / "cfg.yaml"))
    assert result.global_step == 2 and len(decoded) == 2 and all(decoded)
    assert result.best_checkpoint is not None and load_checkpoint(result.best_checkpoint).arch == "y_autoencoder"


# ---------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", ["y_autoencoder", "y_autoencoder_finetune"])
def test_recipes_validate(name):
    from fakescope.train.config import load_config

    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.arch == "y_autoencoder" and cfg.model.kwargs["classification_bce"] is False
    assert cfg.optim.lr == 1e-3 and cfg.optim.weight_decay == 5e-4 and cfg.data.batch_size == 64
    assert cfg.loss.mask_weight == 1.0 and cfg.data.train.synthesis.kind == "sbi"
    assert cfg.train.epochs == (100 if name == "y_autoencoder" else 50)
    build_model(cfg.model.arch, **cfg.model.kwargs)
    if name == "y_autoencoder_finetune":
        assert cfg.model.init.endswith("runs/classnseg/classnseg_full.pt")


# ---------------------------------------------------------------------------- published weights


def test_published_keys_map_one_to_one(shared_dir):
    own = _model().state_dict()
    placed = []
    for kind, file in (("encoder", "encoder_46.pt"), ("decoder", "decoder_46.pt")):
        for key, value in torch.load(shared_dir / WEIGHTS / file, map_location="cpu", weights_only=True).items():
            name = classnseg_key(kind, key)
            assert own[name].shape == value.shape, key
            placed.append(name)
    assert sorted(placed) == sorted(own) and len(placed) == PUBLISHED_TENSORS
    assert classnseg_key("decoder", "decoder.12.weight") == "reconstructor.12.weight"
    published_parameters = sum(own[n].numel() for n in placed if not n.endswith(
        ("running_mean", "running_var", "num_batches_tracked")))
    assert published_parameters == PUBLISHED_PARAMETERS


def test_file_resolution_and_clear_errors(shared_dir, tmp_path):
    folder = shared_dir / WEIGHTS
    assert [p.name for p in classnseg_files(folder)[:2]] == ["encoder_46.pt", "decoder_46.pt"]
    enc, dec, variant = classnseg_files(folder, "finetuned")
    assert (enc.name, dec.name, variant) == ("finetune_encoder_26.pt", "finetune_decoder_26.pt", "finetuned")
    assert classnseg_files(folder / "finetune_encoder_26.pt")[1].name == "finetune_decoder_26.pt"
    with pytest.raises(ModelLoadError, match="unknown ClassNSeg variant"):
        classnseg_files(folder, "tiny")
    with pytest.raises(ModelLoadError, match="encoder file"):
        classnseg_files(folder / "decoder_46.pt")
    with pytest.raises(ModelLoadError, match="no encoder_46.pt"):
        classnseg_files(tmp_path)
    with pytest.raises(ModelLoadError, match="does not look like a ClassNSeg encoder"):
        load_classnseg(folder / "decoder_46.pt", folder / "decoder_46.pt")
    bad = tmp_path / "encoder_46.pt"
    state = torch.load(folder / "encoder_46.pt", map_location="cpu", weights_only=True)
    state["encoder.24.weight"] = state["encoder.24.weight"][:64]
    torch.save(state, bad)
    with pytest.raises(ModelLoadError, match="encoder.24.weight has shape"):
        load_classnseg(bad, folder / "decoder_46.pt")


def _pair(shared_dir):
    """{name: (normalised (1,3,256,256) face, (256,256) bool ground-truth mask, RGB uint8 face)}"""
    faces = {}
    for name in ("real", "fake"):
        rgb = np.asarray(Image.open(shared_dir / PAIR / f"{name}.jpg").convert("RGB"))
        assert rgb.shape == (256, 512, 3)
        face = torch.from_numpy(rgb[:, :256].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        mask = torch.from_numpy(rgb[:, 256:, 0].astype(np.float32) / 255.0) >= 0.5  # as the authors threshold it
        faces[name] = (_normalise(face), mask, np.ascontiguousarray(rgb[:, :256]))
    return faces


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float((pred & truth).sum()) / max(float((pred | truth).sum()), 1.0)


@pytest.fixture(scope="module")
def imported(shared_dir, tmp_path_factory):
    from fakescope.importers import IMPORTERS

    folder = tmp_path_factory.mktemp("classnseg")
    importer = IMPORTERS.get("classnseg")
    paths = {}
    for variant in ("full", "finetuned"):
        paths[variant] = folder / f"classnseg_{variant}.pt"
        assert len(importer(shared_dir / WEIGHTS, None, paths[variant], variant=variant)) == 64
    return paths


# The published figures (shared README): the fake's mask IoU about 0.74 (full) and 0.80
# (fine-tuned). Measured here: 0.741 and 0.799.
@pytest.mark.parametrize("variant,published_iou", [("full", 0.74), ("finetuned", 0.80)])
def test_published_weights_reproduce_the_authors_pair(shared_dir, imported, variant, published_iou):
    detector = load_checkpoint(imported[variant])
    assert detector.arch == "y_autoencoder"
    assert detector.provenance["licence"] == "BSD-3-Clause" and detector.provenance["variant"] == variant
    assert "nii-yamagishilab/ClassNSeg" in detector.provenance["source"]
    assert detector.preprocess.input_size == 256 and detector.preprocess.mean == IMAGENET_MEAN
    pair = _pair(shared_dir)
    with torch.no_grad():
        out = detector.model(torch.cat([pair["real"][0], pair["fake"][0]]))
    p_fake = torch.sigmoid(out["logits"])
    assert p_fake[0] < 0.5 < p_fake[1], p_fake
    predicted = torch.sigmoid(out["mask"][:, 0]) >= 0.5  # test_seg.py: softmax channel 1 >= 0.5
    assert predicted[0].float().mean() < 0.01  # the real face: (almost) nothing marked
    iou = _iou(predicted[1], pair["fake"][1])
    print(f"ClassNSeg {variant}: P(fake) real {p_fake[0]:.3f}, fake {p_fake[1]:.3f}; fake mask IoU {iou:.4f}")
    assert iou >= 0.70 and abs(iou - published_iou) < 0.02, iou


def test_imported_weights_equal_the_published_tensors(shared_dir, imported):
    state = load_checkpoint(imported["finetuned"]).model.state_dict()
    published = torch.load(shared_dir / WEIGHTS / "finetune_decoder_26.pt", map_location="cpu", weights_only=True)
    assert torch.equal(state["reconstructor.12.weight"], published["decoder.12.weight"])
    assert torch.equal(state["segmenter.12.bias"], published["segmenter.12.bias"])


def test_scan_of_the_face_crops_agrees(shared_dir, imported, tmp_path):
    from fakescope import scan

    pair = _pair(shared_dir)
    for name, (_, _, rgb) in pair.items():
        Image.fromarray(rgb).save(tmp_path / f"{name}.png")  # lossless: the same pixels as above
    report = scan([tmp_path / "real.png", tmp_path / "fake.png"], crops=True, model=str(imported["full"]),
                  device="cpu")
    assert [r.status for r in report.results] == ["ok", "ok"]
    assert [r.verdict for r in report.results] == ["real", "fake"]
    with torch.no_grad():
        model = load_checkpoint(imported["full"]).model
        expected = torch.sigmoid(model(torch.cat([pair["real"][0], pair["fake"][0]]))["logits"])
    assert [r.score for r in report.results] == pytest.approx(expected.tolist(), abs=1e-5)


def test_cli_imports_classnseg_and_keeps_mesonet_rules(shared_dir, tmp_path):
    from typer.testing import CliRunner

    from fakescope.cli import app

    runner = CliRunner()
    out = tmp_path / "cns.pt"
    result = runner.invoke(app, ["import-weights", "classnseg", str(shared_dir / WEIGHTS), "--variant", "finetuned",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out).provenance["converted_from"] == ["finetune_encoder_26.pt", "finetune_decoder_26.pt"]
    result = runner.invoke(app, ["import-weights", "classnseg", str(shared_dir / WEIGHTS / "encoder_46.pt"),
                                 "-o", str(tmp_path / "full.pt")])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "full.pt").provenance["variant"] == "full"
    result = runner.invoke(app, ["import-weights", "classnseg", str(shared_dir / WEIGHTS), "--arch", "meso4",
                                 "-o", str(tmp_path / "x.pt")])
    assert result.exit_code != 0 and not (tmp_path / "x.pt").exists()
    result = runner.invoke(app, ["import-weights", "mesonet", str(shared_dir / "weights/mesonet/Meso4_DF.h5"),
                                 "-o", str(tmp_path / "m.pt")])
    assert result.exit_code != 0 and not (tmp_path / "m.pt").exists()


def test_video_score_policy_mean_is_the_mean_of_frame_probabilities():
    from fakescope.scan.aggregate import AGGREGATORS

    assert AGGREGATORS.get("mean")([[0.2, 0.4], [0.9]]) == pytest.approx(0.5)
    assert math.isclose(AGGREGATORS.get("mean")([[0.7]]), 0.7)
