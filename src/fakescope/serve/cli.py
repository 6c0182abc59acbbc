"""`fakescope serve`: the web page and REST API (serve/app.py) on uvicorn."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        host: str = typer.Option("127.0.0.1", help="Address to listen on; only this machine by default. "
                                 "0.0.0.0 opens it to the network: give it a --token then."),
        port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
        data_dir: Path = typer.Option(Path("fakescope-data"), "--data-dir",
                                      help="Where jobs, uploads and results are kept (SQLite + files); "
                                      "jobs survive restarts."),
        workers: int = typer.Option(1, min=1, max=64, help="Scan worker processes (each loads the model once)."),
        token: Optional[List[str]] = typer.Option(None, "--token", help="Require this token on every API call "
                                                  "and the page; repeat for several users, each sees only "
                                                  "their own jobs. Also read from $FAKESCOPE_TOKEN."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="Shipped model name or checkpoint file."),
        frames: int = typer.Option(32, "--frames", "-n", min=1, max=1024, help="Frames sampled per video."),
        mode: str = typer.Option("auto", "--mode", help="What each job analyses, as scan --mode: faces, image, "
                                 "tamper (comma-separated) or auto."),
        image_model: Optional[str] = typer.Option(None, "--image-model", help="Whole-image detector, as scan's."),
        device: str = typer.Option("auto", help="cpu, cuda, cuda:1 ... or auto."),
        backend: str = typer.Option("auto", "--backend", help="auto, torch or onnx (as for scan)."),
        max_upload_mb: float = typer.Option(512.0, min=0.001, help="Refuse uploads larger than this."),
        max_queue: int = typer.Option(100, min=1, help="Jobs queued or running at once; more get HTTP 429."),
        job_timeout: float = typer.Option(600.0, min=0.1, help="Seconds one scan may take; then it fails "
                                          "with status time_limit."),
        max_file_mb: float = typer.Option(4096.0, min=0.0, help="Refuse files larger than this (as scan)."),
        max_megapixels: float = typer.Option(50.0, min=0.0, help="Refuse images or frames larger than this."),
        max_duration: float = typer.Option(3600.0, min=0.0, help="Refuse videos longer than this many seconds."),
    ) -> None:
        """Serve the web page and the REST API (/api/v1, OpenAPI at /api/v1/openapi.json)."""
        import os

        from ..console import err, fail
        from ..scan.media import MediaLimits

        tokens = list(token or [])
        if os.environ.get("FAKESCOPE_TOKEN"):
            tokens.append(os.environ["FAKESCOPE_TOKEN"])
        if any(len(t) < 8 for t in tokens):
            fail("--token: use at least 8 characters (python -c 'import secrets; print(secrets.token_urlsafe())')")
        try:
            import uvicorn

            from .app import ServeConfig, create_app
        except ModuleNotFoundError as exc:
            fail(f"fakescope serve needs {exc.name}, which fakescope installs: pip install --force-reinstall fakescope")
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--data-dir {data_dir}: {exc.strerror or exc}")
        config = ServeConfig(
            data_dir=data_dir.resolve(), tokens=tokens, workers=workers, max_upload_mb=max_upload_mb,
            max_queue=max_queue, job_timeout_s=job_timeout, model=model, mode=mode, image_model=image_model,
            frames=frames, device=device,
            backend=backend, limits=MediaLimits(max_file_mb=max_file_mb, max_pixels=int(max_megapixels * 1e6),
                                                max_duration_s=max_duration))
        import socket

        try:  # a clear line now, not uvicorn's traceback-like log after the workers started
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server there? try --port)")
        from ..errors import FakescopeError
        from ..models.predictor import open_detector

        from ..scan.scanner import parse_mode

        try:  # a bad --model, --mode, --backend or --device fails here, once, not in every worker
            parse_mode(mode)
            open_detector(model or None, backend, device)
            if image_model:
                open_detector(image_model, backend, device)
        except FakescopeError as exc:
            fail(exc.message)
        if host not in LOCAL_HOSTS and not tokens:
            err.print(f"warning: listening on {host} with no --token: anyone who can reach it can upload "
                      "and read every result", highlight=False)
        shown = f"[{host}]" if ":" in host else host
        link = f"http://{shown}:{port}/" + (f"?token={tokens[0]}" if tokens else "")
        err.print(f"fakescope serve: {link}  (data in {config.data_dir}, {workers} worker(s); Ctrl-C stops)",
                  highlight=False)
        uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)
