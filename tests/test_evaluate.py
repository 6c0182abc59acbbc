"""`fakescope evaluate` end to end on the shared real data, plus its protocol rules."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.errors import FakescopeError
from fakescope.evaluate.cli import parse_data_spec
from fakescope.evaluate.runner import Prediction, per_method

HEADLINE = ["auc", "acc", "eer", "ap", "logloss"]
FFPP_METHODS = ["deepfakes", "face2face", "faceswap", "neuraltextures"]


# Meso-4 on a few hundred 256 px crops is small work: one CPU thread keeps these tests fast and steady on
# shared or busy runners, where two OpenMP threads per process spend more time waiting than computing.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def fakescope(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FAKESCOPE_DEBUG"}  # the user's view: no tracebacks
    env.update(ONE_THREAD)
    done = subprocess.run(
        [sys.executable, "-m", "fakescope", "evaluate", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert "Traceback" not in done.stdout and "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def ffpp_run(shared_dir, tmp_path_factory):
    """`fakescope evaluate meso4-df ffpp-crops` writing every output (in-process: imports are paid once;
    the cross-dataset test below runs the real `python -m fakescope` entry point)."""
    out = tmp_path_factory.mktemp("evaluate")
    result = CliRunner().invoke(app, [
        "evaluate", "meso4-df", str(shared_dir / "data/ffpp-crops"), "--device", "cpu",
        "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--roc", str(out / "roc.png"),
        "--predictions", str(out / "p.csv"),
    ])
    assert result.exit_code == 0, result.output
    return out, result


def test_cli_prints_one_row_and_exits_0(ffpp_run):
    _, result = ffpp_run
    rows = [line for line in result.stdout.splitlines() if line.strip().startswith("ffpp-crops")]
    assert len(rows) == 1 and "120" in rows[0]


def test_meso4_df_on_ffpp_crops_matches_the_published_quality(ffpp_run):
    report = json.loads((ffpp_run[0] / "r.json").read_text())
    # the contract: frame-level headline keys at the top, the same keys under "video"
    assert set(HEADLINE) <= set(report) and set(HEADLINE) <= set(report["video"])
    assert report["checkpoint"] == "meso4-df" and report["model"]["name"] == "meso4-df"
    dataset = report["datasets"]["ffpp-crops"]
    assert 0.65 <= report["auc"] <= 0.85  # measured 0.753
    assert report["auc"] == dataset["auc"]  # one dataset: the top level is that dataset
    assert (dataset["n"], dataset["n_fake"], dataset["n_real"]) == (120, 60, 60)
    assert sorted(dataset["methods"]) == FFPP_METHODS  # "original" reals are not a method
    for method in FFPP_METHODS:
        entry = dataset["methods"][method]
        assert (entry["n_fake"], entry["n_real"], entry["reals"]) == (15, 60, "all")
        assert set(HEADLINE) <= set(entry) and set(HEADLINE) <= set(entry["video"])
    assert dataset["methods"]["deepfakes"]["auc"] >= 0.90  # measured 0.934 (vs all 60 reals)
    # video level: (method, id) keys; real video 353 has a frame in two folders -> 119 videos of 120 frames
    assert (dataset["video"]["n"], dataset["video"]["n_frames"]) == (119, 120)
    assert dataset["video"]["n_fake"] == 60 and 0.65 <= dataset["video"]["auc"] <= 0.85


def test_predictions_csv_reproduces_the_reported_auc(ffpp_run):
    out = ffpp_run[0]
    with open(out / "p.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 120
    assert set(rows[0]) == {"dataset", "path", "label", "score", "video", "method"}
    assert all(Path(r["path"]).is_file() and 0.0 <= float(r["score"]) <= 1.0 for r in rows)
    auc = roc_auc_score([int(r["label"]) for r in rows], [float(r["score"]) for r in rows])
    assert auc == pytest.approx(json.loads((out / "r.json").read_text())["auc"], abs=1e-4)


def test_roc_png_and_markdown_are_written(ffpp_run):
    out = ffpp_run[0]
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out / "roc.png") as image:
        image.verify()
    with Image.open(out / "roc.png") as image:
        assert image.format == "PNG" and min(image.size) >= 300
    markdown = (out / "r.md").read_text()
    for heading in ("## Frame level", "## Video level", "## Per manipulation method", "## Protocol"):
        assert heading in markdown
    assert "| ffpp-crops | deepfakes | 15 | 60 (all) |" in markdown


def test_cross_dataset_gives_one_row_per_dataset(shared_dir, tmp_path):
    done = fakescope(
        "meso4-df", f"ciplab={shared_dir / 'data/ciplab-faces'}", str(shared_dir / "data/ffpp-crops"),
        "--split", "test", "--device", "cpu", "--json", "r.json", "--roc", "roc.png", cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["datasets"]) == ["ciplab", "ffpp-crops"]
    ciplab = report["datasets"]["ciplab"]
    assert ciplab["n"] == 316  # the fixed test split only
    assert ciplab["video"] is None and ciplab["methods"] == {}  # no video or method columns
    assert report["datasets"]["ffpp-crops"]["n"] == 120  # no split column: --split does not apply ...
    assert "ffpp-crops: no split column" in done.stderr  # ... and the user is told
    # top level pools both datasets; the video object covers only the one with video ids
    assert report["n"] == 436 and report["pooled_over"] == ["ciplab", "ffpp-crops"]
    assert report["video"]["datasets"] == ["ffpp-crops"]
    table_rows = [line for line in done.stdout.splitlines() if line.strip().startswith(("ciplab", "ffpp-crops"))]
    assert len(table_rows) == 2
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- errors: one line, exit 2


def test_unknown_model_is_exit_2_with_did_you_mean(shared_dir, tmp_path):
    done = fakescope("meso4-dff", str(shared_dir / "data/ffpp-crops"), cwd=tmp_path)
    assert done.returncode == 2
    assert "meso4-df" in done.stderr and "Did you mean" in done.stderr


@pytest.mark.parametrize("data, message", [
    ("{shared}/data/missing-folder", "no manifest"),
    ("{shared}/data/ciplab-faces:tset", "no split 'tset'; its splits are: test, train, val"),
    ("{shared}/data/ffpp-crops:test", "has no split column"),
])
def test_bad_data_arguments_are_one_line_and_exit_2(shared_dir, data, message):
    # in-process (each subprocess costs seconds of imports); the subprocess case above covers the real entry point
    result = CliRunner().invoke(app, ["evaluate", "meso4-df", data.format(shared=shared_dir)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_same_name_twice_is_exit_2(shared_dir):
    folder = str(shared_dir / "data/mesonet-samples")
    result = CliRunner().invoke(app, ["evaluate", "meso4-df", folder, folder])
    assert result.exit_code == 2 and "NAME=PATH" in result.output


def test_missing_image_is_exit_2(tmp_path):
    (tmp_path / "manifest.csv").write_text("path,label\ngone.png,1\n")
    result = CliRunner().invoke(app, ["evaluate", "meso4-df", str(tmp_path)])
    assert result.exit_code == 2 and "gone.png does not exist" in result.output


# ----------------------------------------------------------------------------- protocol pieces (no model)


def test_data_spec_parsing(tmp_path):
    assert parse_data_spec("a=some/folder:test") == ("a", Path("some/folder"), "test")
    assert parse_data_spec("some/manifest.csv") == (None, Path("some/manifest.csv"), None)
    odd = tmp_path / "x=y:z"  # an existing path is taken whole
    odd.mkdir()
    assert parse_data_spec(str(odd)) == (None, odd, None)
    with pytest.raises(FakescopeError):
        parse_data_spec("folder:")


def _rows(spec: list[tuple[int, str, float]]) -> list[Prediction]:
    return [Prediction("d", f"{i}.png", label, score, str(i), method) for i, (label, method, score) in enumerate(spec)]


def test_per_method_uses_all_reals_when_reals_are_original():
    rows = _rows([(1, "A", 0.9), (1, "B", 0.3), (0, "original", 0.2), (0, "original", 0.5)])
    out = per_method(rows)
    assert sorted(out) == ["A", "B"] and out["A"]["reals"] == "all" and out["A"]["n_real"] == 2
    assert out["A"]["auc"] == 1.0  # 0.9 above both reals
    assert out["B"]["auc"] == 0.5  # 0.3: above 0.2, below 0.5


def test_per_method_uses_same_method_reals_when_the_manifest_has_them():
    rows = _rows([(1, "A", 0.9), (0, "A", 0.2), (1, "B", 0.3), (0, "B", 0.5), (0, "B", 0.1)])
    out = per_method(rows)
    assert out["A"]["reals"] == "same method" and out["A"]["n_real"] == 1 and out["A"]["auc"] == 1.0
    assert out["B"]["n_real"] == 2 and out["B"]["auc"] == 0.5


# ----------------------------------------------------------------------------- pixel level (forgery masks)


@pytest.fixture(scope="module")
def classnseg(shared_dir, tmp_path_factory) -> Path:
    """classnseg-pair's two 512x256 files split into a 256 px face (left half) and its ground-truth
    mask (right half, white = manipulated) each, with a manifest naming both."""
    folder = tmp_path_factory.mktemp("classnseg")
    lines = ["path,label,mask"]
    for name, label in (("fake", 1), ("real", 0)):
        with Image.open(shared_dir / f"data/classnseg-pair/{name}.jpg") as image:
            pair = image.convert("RGB")
        assert pair.size == (512, 256)
        pair.crop((0, 0, 256, 256)).save(folder / f"{name}_face.png")
        pair.crop((256, 0, 512, 256)).save(folder / f"{name}_mask.png")
        lines.append(f"{name}_face.png,{label},{name}_mask.png")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder


PIXEL_RATES = ["pixel_acc", "pixel_auc", "iou", "fp_pixel_rate"]


def test_pixel_metrics_of_the_default_model_on_classnseg(classnseg, tmp_path):
    result = CliRunner().invoke(app, [
        "evaluate", "efficientnet-lite0-sbi", f"cns={classnseg}", "--device", "cpu", "--batch-size", "2",
        "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md"),
    ])
    assert result.exit_code == 0, result.output
    assert "pixel level (mask_head" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    pixel = report["datasets"]["cns"]["pixel"]
    assert pixel["source"] == "mask_head"
    assert (pixel["n"], pixel["n_fake"], pixel["n_real"], pixel["n_iou"]) == (2, 1, 1, 1)
    assert pixel["n_pixels"] == 2 * 256 * 256 and pixel["n_real_implied"] == 0
    for key in PIXEL_RATES:
        assert pixel[key] is not None and 0.0 <= pixel[key] <= 1.0, key
    assert pixel["undefined"] == {}
    assert report["pixel"]["datasets"] == ["cns"]  # pooled over the one dataset: the same numbers
    assert all(report["pixel"][k] == pixel[k] for k in PIXEL_RATES)
    assert "pixel" in report["protocol"]
    markdown = (tmp_path / "r.md").read_text()
    assert "## Pixel level (forgery masks)" in markdown and "| cns | mask_head | 2 | 1 | 1 (0) | 1 |" in markdown


def test_no_mask_head_skips_pixel_metrics_with_a_note_unless_asked(classnseg, tmp_path):
    skipped = CliRunner().invoke(app, ["evaluate", "meso4-df", f"cns={classnseg}", "--device", "cpu",
                                       "--json", str(tmp_path / "r.json")])
    assert skipped.exit_code == 0, skipped.output
    assert "has no mask head, so pixel metrics are skipped" in skipped.output and "--grad-cam-masks" in skipped.output
    report = json.loads((tmp_path / "r.json").read_text())
    dataset = report["datasets"]["cns"]
    assert dataset["pixel"] is None and "no mask head" in dataset["pixel_note"] and report["pixel"] is None
    asked = CliRunner().invoke(app, ["evaluate", "meso4-df", f"cns={classnseg}", "--device", "cpu",
                                     "--grad-cam-masks", "--json", str(tmp_path / "g.json")])
    assert asked.exit_code == 0, asked.output
    with_cam = json.loads((tmp_path / "g.json").read_text())["datasets"]["cns"]
    pixel = with_cam["pixel"]
    assert pixel["source"] == "grad_cam" and all(0.0 <= pixel[k] <= 1.0 for k in PIXEL_RATES)
    # the scores do not depend on whether masks were scored
    assert dataset["logloss"] == pytest.approx(with_cam["logloss"], abs=1e-6)


class _HalfMaskModel(torch.nn.Module):
    """Logit 0; mask logits on an 8x8 grid: +10 on grid rows 2-3 ("top": square rows 50-99 of a
    200 px crop, the upper half of a centred 200x100 image) or on the left half ("left"), -10 elsewhere."""

    def __init__(self, half: str):
        super().__init__()
        self.half = half

    def forward(self, x):
        grid = torch.full((x.shape[0], 1, 8, 8), -10.0)
        if self.half == "top":
            grid[:, :, 2:4] = 10.0
        else:
            grid[:, :, :, :4] = 10.0
        return {"logits": torch.zeros(x.shape[0]), "mask": grid}


def test_predicted_masks_are_mapped_onto_non_square_faces_and_resized_masks(tmp_path):
    """A 200x100 face is squared (edge-padded to 200x200, 50 rows above and below) before the model;
    the predicted mask must be cut back to the image's rows, then resized to the mask's size."""
    from types import SimpleNamespace

    from fakescope.data.manifest import Manifest, Sample
    from fakescope.evaluate.runner import _score_with_masks
    from fakescope.models.base import PreprocessSpec
    from fakescope.models.predictor import Predictor

    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(tmp_path / "face.png")
    top = np.zeros((100, 200), np.uint8)
    top[:50] = 255  # square rows 50-99 (what the model marks) are image rows 0-49 ...
    Image.fromarray(top).save(tmp_path / "top.png")
    Image.fromarray(top[::2, ::2]).save(tmp_path / "top_small.png")  # ... also at half the size
    left = np.zeros((100, 200), np.uint8)
    left[:, :100] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    preprocess = PreprocessSpec(input_size=64)
    for half, mask in (("top", "top.png"), ("top", "top_small.png"), ("left", "left.png")):
        manifest = Manifest([Sample("face.png", 1, mask=mask), Sample("face.png", 0)], tmp_path)
        detector = SimpleNamespace(model=_HalfMaskModel(half), preprocess=preprocess, name="stub")
        predictor = Predictor(detector, device="cpu", batch_size=2, backend="torch")
        scores, pixels, counts, note = _score_with_masks("d", manifest, predictor, False, 0)
        out = pixels.result()
        assert note is None and counts["source"] == "mask_head" and counts["n_real_implied"] == 1
        assert out["iou"] == pytest.approx(1.0), (half, mask)
        # the real (an implied all-zero 200x100 mask) gets the same prediction: half its pixels called
        assert out["fp_pixel_rate"] == pytest.approx(0.5)
        assert list(scores) == [0.5, 0.5]
