"""A scan worker: its own process (`python -m fakescope.serve.worker`), started by the server.

It builds one `Scanner` (model and face detector loaded once), then takes jobs from the store
until it is stopped. The server's API never scans, so it answers while scans run; the server
kills a worker whose job is over the time limit or was deleted, and starts another. A worker
dies with its server (Linux PR_SET_PDEATHSIG; elsewhere it notices its parent is gone), so a
killed server leaves no orphan scanning a job that the next server will run again.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

POLL_SECONDS = 0.2  # how often an idle worker looks for a queued job
CANNOT_START = 3  # exit status of a worker that could not load its model: not restarted

log = logging.getLogger("fakescope.serve.worker")


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the process (thread) that started it ends."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass


def scan_settings(options: dict):
    """The ScanSettings every job runs with: the server's options, plus heatmaps and masks
    (each job points them at its own folder)."""
    from ..scan.media import MediaLimits
    from ..scan.scanner import ScanSettings

    limits = MediaLimits(**options.get("limits", {}))
    return ScanSettings(model=options.get("model") or ScanSettings.model, frames=int(options.get("frames", 32)),
                        device=options.get("device", "auto"), backend=options.get("backend", "auto"),
                        mode=options.get("mode", "auto"), image_model=options.get("image_model"),
                        heatmap_dir="heatmaps", masks_dir="masks", limits=limits)


class Worker:
    def __init__(self, data_dir: Path, index: int, options: dict):
        from ..scan.scanner import Scanner
        from .store import JobStore

        self.store = JobStore(data_dir)
        self.index = index
        from ..errors import FakescopeError

        self.base_settings = scan_settings(options)
        try:
            self.scanner = Scanner(self.base_settings)
        except FakescopeError:  # maps need what this install lacks (Grad-CAM without PyTorch): scan without them
            self.base_settings = replace(self.base_settings, heatmap_dir=None, masks_dir=None)
            self.scanner = Scanner(self.base_settings)
        if not self.scanner.settings.crops:
            self.scanner.face_detector  # load before the first job, not in its time

    def run_forever(self, parent: int) -> None:
        while True:
            if os.getppid() != parent:  # the server is gone (platforms without PDEATHSIG)
                return
            job = self.store.claim(self.index)
            if job is None:
                time.sleep(POLL_SECONDS)
                continue
            try:
                self.run_job(job)
            except Exception as exc:  # noqa: BLE001 - the job fails with a status; the worker goes on
                log.warning("job %s failed", job.id, exc_info=True)
                self.store.fail(job.id, job.run_id, "internal_error", f"{type(exc).__name__}: {exc}")

    def run_job(self, job) -> None:
        """Scan one job's upload and store its result and pictures."""
        from .. import __version__
        from ..scan.report import (IMAGE_MAP, encode_picture, evidence_images, face_picture, heatmap_picture,
                                   tamper_picture)
        from ..scan.results import ScanReport

        job_dir = self.store.job_dir(job.id)
        scratch = job_dir / f"run-{job.run_id}"
        files = self.store.files_dir(job.id)
        shutil.rmtree(files, ignore_errors=True)  # what an interrupted run left
        for old in job_dir.glob("run-*"):
            shutil.rmtree(old, ignore_errors=True)
        if self.base_settings.heatmap_dir is not None:
            self.scanner.settings = replace(self.base_settings, heatmap_dir=str(scratch / "heatmaps"),
                                            masks_dir=str(scratch / "masks"))
        frames: dict = {}
        upload = self.store.input_path(job)

        def progress(done: int) -> None:
            self.store.progress(job.id, job.run_id, done)

        def keep(decoded) -> None:
            frames.update({frame.index: frame.image for frame in decoded})

        result = self.scanner.scan_file(upload, on_progress=progress, on_frames=keep)
        report = ScanReport(results=[result], model=self.scanner.model_info(),
                            settings=self.scanner.settings_info(), version=__version__).to_dict()
        report["settings"]["heatmap_dir"] = report["settings"]["masks_dir"] = None  # server paths, not the user's
        file_result = report["results"][0]
        if file_result["status"] == "ok" and frames:
            files.mkdir(parents=True, exist_ok=True)
            threshold = report["settings"]["threshold"]
            for name, picture in evidence_images(file_result, frames, threshold).items():
                (files / name).write_bytes(encode_picture(picture, name))
            for i, face in enumerate(file_result["faces"]):
                # the API serves the pictures; the result says where, instead of the worker's paths
                face["heatmap"] = f"files/{heatmap_picture(i)}" if (files / heatmap_picture(i)).is_file() else None
                if face.get("mask") and Path(face["mask"]).is_file():
                    shutil.move(face["mask"], files / f"mask-{i:04d}.png")
                    face["mask"] = f"files/mask-{i:04d}.png"
                else:
                    face["mask"] = None
                face["thumbnail"] = f"files/{face_picture(i)}" if (files / face_picture(i)).is_file() else None
            # the whole-picture and tampering maps: served as their overlays on the picture
            if file_result.get("whole_image"):
                shown = files / IMAGE_MAP
                file_result["whole_image"]["patch_map"] = f"files/{IMAGE_MAP}" if shown.is_file() else None
            for finding in (file_result.get("tamper") or {}).get("findings", []):
                shown = files / tamper_picture(finding["method"])
                finding["mask"] = f"files/{shown.name}" if shown.is_file() else None
        shutil.rmtree(scratch, ignore_errors=True)
        _hide_server_paths(file_result, upload, job.filename)
        self.store.finish(job.id, job.run_id, report)


def _hide_server_paths(result: dict, upload: Path, filename: str) -> None:
    """The result names the uploaded file as the user named it, not where the server keeps it."""
    stored = str(upload)
    result["path"] = filename
    if result.get("message"):
        result["message"] = result["message"].replace(stored, filename)
    result["warnings"] = [w.replace(stored, filename) for w in result.get("warnings", [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fakescope scan worker (started by `fakescope serve`)")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--options", default="{}", help="the server's scan options, JSON")
    parser.add_argument("--parent", type=int, default=None)
    args = parser.parse_args(argv)
    die_with_parent()
    logging.basicConfig(level=logging.WARNING, format="worker %(process)d: %(message)s")
    parent = args.parent if args.parent is not None else os.getppid()
    try:
        worker = Worker(args.data_dir, args.index, json.loads(args.options))
    except Exception as exc:  # noqa: BLE001 - the server stops restarting a worker that cannot start
        from ..errors import FakescopeError

        message = exc.message if isinstance(exc, FakescopeError) else f"{type(exc).__name__}: {exc}"
        print(f"error: scan worker {args.index} cannot start: {message}", file=sys.stderr)
        return CANNOT_START
    try:
        worker.run_forever(parent)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
