"""`fakescope synth`: write example synthesized fakes (SBI / Face X-ray) from real faces.

For eyeballing the synthesis in data.synthesis before training on it: per example,
the fake PNG, its mask PNG, and a preview (real | fake | mask | boundary), plus a
manifest.csv of the fakes (label 1, mask, source = the real face used).
"""
from __future__ import annotations

from pathlib import Path

import typer

from ..console import fail as _fail
from ..errors import FakescopeError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def _real_faces(source: Path):
    """Real face crops from a manifest (CSV, or folder with manifest.csv: its label-0 rows)
    or, failing that, every image under a folder."""
    from .manifest import Manifest, Sample

    if source.is_file() or (source / "manifest.csv").is_file():
        manifest = Manifest.read(source)
        return Manifest([s for s in manifest if int(s.label) == 0], manifest.root)
    if not source.is_dir():
        _fail(f"{source}: not a manifest or a folder")
    images = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return Manifest([Sample(path=str(p.relative_to(source)), label=0) for p in images], source)


def synth(
    source: Path = typer.Argument(..., metavar="REAL_FACES_DIR_OR_MANIFEST",
                                  help="Folder of real face crops, or a manifest (its label-0 rows are used)."),
    out_dir: Path = typer.Argument(..., help="Where the fakes, masks, previews and manifest.csv go."),
    n: int = typer.Option(16, "--n", min=1, max=100000, help="Number of fakes to write."),
    kind: str = typer.Option("sbi", "--kind", help="sbi (self-blended), xray (blend onto another face) or both."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same fakes)."),
    size: int = typer.Option(256, "--size", min=16, max=2048, help="Face side in pixels."),
    device: str = typer.Option("cpu", help="Device for MTCNN (landmarks)."),
) -> None:
    """Write example fakes synthesized from real faces only (for checking the synthesis by eye)."""
    import cv2
    import numpy as np
    from rich.markup import escape

    from ..console import out as _out
    from ..models.base import PreprocessSpec
    from .manifest import Manifest, Sample
    from .synthesis import SyntheticFakeDataset, boundary_from_mask

    if kind not in ("sbi", "xray", "both"):
        _fail(f"--kind must be sbi, xray or both, not {kind!r}")
    try:
        reals = _real_faces(source)
    except FakescopeError as exc:
        _fail(exc.message)
    if not len(reals):
        _fail(f"{source}: no real face images found")
    if out_dir.exists() and not out_dir.is_dir():
        _fail(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)

    from ..scan.faces import MTCNNFaceDetector

    detector = MTCNNFaceDetector(device=device, min_face_size=32, min_confidence=0.9)
    dataset = SyntheticFakeDataset(reals, PreprocessSpec(input_size=size), kind=kind, seed=seed, p_fake=1.0,
                                   landmarks_json=out_dir / "landmarks.json", detector=detector)
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(n):
        index = int(rng.integers(0, len(dataset)))
        item_rng = np.random.default_rng([seed, number])
        this_kind = kind if kind != "both" else ("sbi", "xray")[number % 2]
        real, _ = dataset.load(index)
        fake, mask, method = dataset.synthesize(index, item_rng, this_kind)
        stem = f"{number:04d}_{method}"
        fake_path, mask_path = out_dir / f"{stem}_fake.png", out_dir / f"{stem}_mask.png"
        cv2.imwrite(str(fake_path), cv2.cvtColor(fake, cv2.COLOR_RGB2BGR))
        mask8 = np.round(mask * 255).astype(np.uint8)
        cv2.imwrite(str(mask_path), mask8)
        boundary8 = np.round(boundary_from_mask(mask) * 255).astype(np.uint8)
        preview = np.hstack([real, fake, np.repeat(mask8[..., None], 3, 2), np.repeat(boundary8[..., None], 3, 2)])
        cv2.imwrite(str(out_dir / f"{stem}_preview.png"), cv2.cvtColor(preview, cv2.COLOR_RGB2BGR))
        sample = reals.samples[index]
        rows.append(Sample(path=fake_path.name, label=1, method=method, mask=mask_path.name,
                           source=str(reals.resolve(sample.path).resolve()), dataset="synthetic"))
    dataset.save_landmarks()
    Manifest(rows, out_dir).write(out_dir / "manifest.csv")
    _out.print(f"wrote {n} fakes to {escape(str(out_dir))} "
               f"({sum(r.method == 'sbi' for r in rows)} sbi, {sum(r.method == 'xray' for r in rows)} xray)",
               highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
