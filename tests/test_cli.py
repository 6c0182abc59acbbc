"""The command line itself: instant start, help texts, `models`, option checks made before
any scan, the no-face message, and folder scans that survive an interruption (--jsonl, --resume).

Scans here take face crops (--crops) with the small MesoNet model on ONNX Runtime, so each
runs in about a second; only the no-face checks run the face detector, on one tiny image.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

import fakescope
from fakescope.cli import app
from fakescope.errors import FakescopeError
from fakescope.scan.results import EXIT_ALL_SCORED, EXIT_NOTHING_SCORED, EXIT_USAGE
from fakescope.scan.scanner import Scanner

SMALL = ["--crops", "--model", "meso4-df", "--device", "cpu", "--backend", "onnx"]


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, *words: str) -> str:
    """The result is a usage failure: exit 2, one line on stderr naming `words`."""
    assert result.exit_code == EXIT_USAGE, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def crops(shared_dir, tmp_path) -> list[Path]:
    """Four real FF++ face crops in a folder tree, listed in the order a folder scan takes them."""
    source = sorted((shared_dir / "data/ffpp-crops/deepfakes").glob("*/*.png"))[:4]
    assert len(source) == 4
    folder = tmp_path / "faces"
    (folder / "b").mkdir(parents=True)
    targets = [folder / "a1.png", folder / "a2.png", folder / "b" / "c1.png", folder / "b" / "c2.png"]
    for src, dst in zip(source, targets):
        shutil.copy(src, dst)
    return targets


@pytest.fixture
def no_scanner(monkeypatch):
    """Fails the test if a Scanner is built: option checks must come before the model loads."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("Scanner built before the options were checked")

    monkeypatch.setattr(Scanner, "__init__", refuse)


# ----------------------------------------------------------------------------- start-up

HEAVY = ("torch", "timm", "cv2", "facenet_pytorch", "sklearn", "albumentations")


def test_help_and_models_import_nothing_heavy():
    # a fresh interpreter: this test process has imported torch long ago
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from fakescope.cli import app\n"
        "codes = [CliRunner().invoke(app, args).exit_code for args in (['--help'], ['models', '--json'], ['--version'])]\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in {HEAVY!r}}}\n"
        "               | {m for m in sys.modules if m == 'fakescope.models.base'})\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["codes"] == [0, 0, 0]
    assert seen["heavy"] == []


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"fakescope {fakescope.__version__}\n"


def test_models_lists_the_catalog_and_the_shipped_models():
    from fakescope.models.catalog import load_catalog
    from fakescope.models.zoo import DEFAULT_MODEL, zoo_entries

    listed = json.loads(run("models", "--json").stdout)
    assert listed["architectures"] == load_catalog()
    assert {a["name"] for a in listed["architectures"]} >= {"efficientnet_lite0", "meso4", "xception"}
    assert [s["name"] for s in listed["shipped"]] == list(zoo_entries())
    assert [s["name"] for s in listed["shipped"] if s["default"]] == [DEFAULT_MODEL]
    table = run("models")
    assert table.exit_code == 0
    assert "(default)" in table.stdout and "3,456,194" in table.stdout  # lite0's parameter count


@pytest.mark.slow  # builds all 13 architectures (PyTorch and every model family): ~10 s or more
def test_committed_catalog_is_what_the_registry_gives():
    from fakescope.models.catalog import CATALOG_PATH, build_catalog, render

    assert CATALOG_PATH.read_text() == render(build_catalog()), "run: python -m fakescope.models.catalog"


# ----------------------------------------------------------------------------- help texts

def _all_commands() -> list[str]:
    return sorted(typer.main.get_command(app).commands)


def test_every_help_shows_flags_as_flags():
    assert {"scan", "evaluate", "extract", "train", "split", "bench"} <= set(_all_commands())
    for args in [["--help"]] + [[name, "--help"] for name in _all_commands()]:
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "<bool>" not in result.stdout and "BOOLEAN" not in result.stdout, args
    scan_help = run("scan", "--help").stdout
    lines = {line.split()[0].rstrip(","): line for line in scan_help.splitlines() if line.strip().startswith("-")}
    assert lines["--crops"].split()[1] == "Inputs"  # the help text right after the flag: no value to give
    assert lines["-q"].split()[1] == "--quiet"
    assert "[the model's own" in scan_help  # help texts are not read as markup (which ate brackets)
    assert "auto|torch|onnx" in scan_help


# ----------------------------------------------------------------------------- --backend

@pytest.mark.parametrize("backend", ["auto", "torch", "onnx"])
def test_backend_reaches_the_scan_settings(backend, monkeypatch, tmp_path):
    seen = {}

    def capture(self, settings=None, detector=None):
        seen["backend"] = settings.backend
        raise FakescopeError("stop here")

    monkeypatch.setattr(Scanner, "__init__", capture)
    one_error_line(run("scan", tmp_path / "x.png", "--backend", backend), "stop here")
    assert seen == {"backend": backend}


def test_unknown_backend_is_a_usage_error(no_scanner, tmp_path):
    one_error_line(run("scan", tmp_path / "x.png", "--backend", "gpu"), "--backend", "gpu", "onnx")


def test_onnx_backend_scans(crops, tmp_path):
    out = tmp_path / "report.json"
    result = run("scan", crops[0], *SMALL, "--json", out)
    assert result.exit_code == EXIT_ALL_SCORED, result.output
    report = json.loads(out.read_text())
    assert report["model"]["backend"] == "onnx" and report["settings"]["backend"] == "onnx"


# ----------------------------------------------------------------------------- output paths

@pytest.mark.parametrize("option", ["--json", "--csv", "--jsonl"])
def test_file_outputs_are_checked_before_the_scan(option, no_scanner, tmp_path):
    image = tmp_path / "x.png"
    (tmp_path / "a_file").write_text("x")
    one_error_line(run("scan", image, option, tmp_path), option, str(tmp_path), "folder")
    one_error_line(run("scan", image, option, "/proc/x.out"), option, "/proc/x.out")
    one_error_line(run("scan", image, option, tmp_path / "a_file" / "x.out"), option, "not a folder")


@pytest.mark.parametrize("option", ["--heatmap", "--masks"])
def test_folder_outputs_must_not_be_files(option, no_scanner, tmp_path):
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"")
    one_error_line(run("scan", tmp_path / "x.png", option, existing), option, str(existing), "is a file")
    one_error_line(run("scan", tmp_path / "x.png", option, "/proc/maps_here"), option, "/proc/maps_here")


def test_two_outputs_on_one_file_are_refused(no_scanner, tmp_path):
    target = tmp_path / "out.json"
    one_error_line(run("scan", tmp_path / "x.png", "--json", target, "--jsonl", target), "--json", "--jsonl")


def test_missing_output_folders_are_made(crops, tmp_path):
    out = tmp_path / "new" / "deeper" / "report.csv"
    result = run("scan", crops[0], *SMALL, "--csv", out)
    assert result.exit_code == EXIT_ALL_SCORED, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [str(crops[0])] and rows[0]["status"] == "ok"


# ----------------------------------------------------------------------------- images smaller than --min-face

@pytest.fixture
def tiny_face(shared_dir, tmp_path) -> Path:
    """A real face crop shrunk to 40 x 40 px: below the 64 px --min-face on its short side."""
    source = sorted((shared_dir / "data/ffpp-crops/deepfakes/real").glob("*.png"))[0]
    folder = tmp_path / "tiny"
    folder.mkdir()
    Image.open(source).convert("RGB").resize((40, 40)).save(folder / "face40.png")
    return folder / "face40.png"


def test_scan_of_an_image_below_min_face_is_no_face(tiny_face, tmp_path):
    out = tmp_path / "report.json"
    result = run("scan", tiny_face, "--device", "cpu", "--json", out)
    assert result.exit_code == EXIT_NOTHING_SCORED, result.output
    (only,) = json.loads(out.read_text())["results"]
    assert only["status"] == "no_face", only["message"]
    assert "at least 64 px" in only["message"] and "--min-face" in only["message"]


def test_extract_of_an_image_below_min_face_is_no_face(tiny_face, tmp_path):
    (tiny_face.parent / "manifest.csv").write_text("path,label\nface40.png,0\n")
    out = tmp_path / "crops"
    result = run("extract", tiny_face.parent, out, "--frames", "1", "--quiet")
    assert result.exit_code == EXIT_NOTHING_SCORED, result.output
    report = json.loads((out / "extraction_report.json").read_text())
    assert [(Path(v["path"]).name, v["status"]) for v in report["problems"]] == [("face40.png", "no_face")]


# ----------------------------------------------------------------------------- --jsonl, Ctrl-C, --resume

def _jsonl(path: Path) -> tuple[dict, list[dict]]:
    """Header and file lines; every line must be whole JSON."""
    lines = path.read_text().splitlines(keepends=True)
    assert all(line.endswith("\n") for line in lines)
    records = [json.loads(line) for line in lines]
    assert set(records[0]) == {"fakescope_version", "model", "settings"}
    return records[0], records[1:]


_FINISH = Scanner._finish  # the real one, whatever a test patched before


def _count_scans(monkeypatch, stop_after: int | None = None) -> list[str]:
    """Record every file the scanner scores; with `stop_after`, Ctrl-C arrives while the next one is scanned."""
    scanned: list[str] = []

    def counting(self, path, stream):
        if stop_after is not None and len(scanned) == stop_after:
            raise KeyboardInterrupt
        scanned.append(str(path))
        return _FINISH(self, path, stream)

    monkeypatch.setattr(Scanner, "_finish", counting)
    return scanned


def test_jsonl_streams_one_line_per_file(crops, tmp_path):
    jsonl, out = tmp_path / "scan.jsonl", tmp_path / "scan.json"
    result = run("scan", crops[0].parent, *SMALL, "--jsonl", jsonl, "--json", out)
    assert result.exit_code == EXIT_ALL_SCORED, result.output
    header, lines = _jsonl(jsonl)
    report = json.loads(out.read_text())
    assert header == {k: report[k] for k in ("fakescope_version", "model", "settings")}
    assert lines == report["results"]  # the same objects as --json's results
    assert [r["path"] for r in lines] == [str(p) for p in crops]


def test_interrupted_scan_keeps_what_is_done_and_resumes(crops, tmp_path, monkeypatch):
    folder = crops[0].parent
    jsonl, out, table = tmp_path / "scan.jsonl", tmp_path / "scan.json", tmp_path / "scan.csv"
    outputs = ["--jsonl", jsonl, "--json", out, "--csv", table]

    first = _count_scans(monkeypatch, stop_after=2)
    stopped = run("scan", folder, *SMALL, *outputs)
    assert stopped.exit_code == 130, stopped.output
    assert "2 of 4 file(s) done" in stopped.stderr and "--resume" in stopped.stderr
    assert first == [str(p) for p in crops[:2]]
    _, lines = _jsonl(jsonl)
    assert [r["path"] for r in lines] == first
    assert json.loads(out.read_text())["results"] == lines  # --json and --csv hold the finished files too
    assert [r["path"] for r in csv.DictReader(table.open())] == first

    # killed while writing the third file's line: its half line is dropped and the file scanned again
    with jsonl.open("a") as handle:
        handle.write(json.dumps({"path": str(crops[2]), "status": "ok", "score": 0.5})[:25])

    second = _count_scans(monkeypatch)
    resumed = run("scan", folder, *SMALL, *outputs, "--resume")
    assert resumed.exit_code == EXIT_ALL_SCORED, resumed.output
    assert second == [str(p) for p in crops[2:]]  # nothing scored twice
    assert "2 file(s) already done, 2 to scan" in resumed.stderr and "unfinished last line" in resumed.stderr
    _, all_lines = _jsonl(jsonl)
    assert all_lines[:2] == lines and [r["path"] for r in all_lines] == [str(p) for p in crops]
    final = json.loads(out.read_text())["results"]
    assert final == all_lines  # the earlier files read back exactly as they were written
    assert [r["path"] for r in csv.DictReader(table.open())] == [str(p) for p in crops]
    assert all(r["status"] == "ok" for r in final)

    third = _count_scans(monkeypatch)
    again = run("scan", folder, *SMALL, *outputs, "--resume")
    assert again.exit_code == EXIT_ALL_SCORED and third == []
    assert json.loads(out.read_text())["results"] == final


def test_resume_refuses_other_scoring_options(crops, tmp_path):
    jsonl = tmp_path / "scan.jsonl"
    assert run("scan", crops[0], *SMALL, "--jsonl", jsonl).exit_code == EXIT_ALL_SCORED
    before = jsonl.read_text()
    refused = run("scan", crops[0], crops[1], *SMALL, "--jsonl", jsonl, "--resume", "--min-face", "32")
    one_error_line(refused, "--resume", "min_face_size")
    assert jsonl.read_text() == before


def test_resume_needs_jsonl_and_a_readable_one(no_scanner, tmp_path):
    one_error_line(run("scan", tmp_path / "x.png", "--resume"), "--resume", "--jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"fakescope_version": "0.1.0", "model": {}, "settings": {}}\nnot json\n{"path": "x"}\n')
    one_error_line(run("scan", tmp_path / "x.png", "--jsonl", broken, "--resume"), str(broken), "line 2")


def test_resume_of_a_missing_jsonl_starts_it(crops, tmp_path):
    jsonl = tmp_path / "fresh.jsonl"
    assert run("scan", crops[0], *SMALL, "--jsonl", jsonl, "--resume").exit_code == EXIT_ALL_SCORED
    _, lines = _jsonl(jsonl)
    assert [r["path"] for r in lines] == [str(crops[0])]


def test_a_command_that_needs_pytorch_says_so_in_a_scan_only_install(shared_dir):
    """With PyTorch unimportable (as in `pip install fakescope`), evaluate fails with one line naming
    the extra to install, exit 2, instead of an internal error."""
    import subprocess
    import sys

    code = ("import sys\nsys.modules['torch'] = None\n"
            f"sys.argv = ['fakescope', 'evaluate', 'meso4-df', {str(shared_dir / 'data/ffpp-crops')!r}]\n"
            "from fakescope.cli import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-1000:]
    assert 'pip install "fakescope[train]"' in done.stderr and "internal error" not in done.stderr
