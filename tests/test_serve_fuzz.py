"""Schema fuzzing: schemathesis generates requests from the server's own OpenAPI schema
(valid and invalid: odd ids, query values, multipart bodies); no answer may be a 5xx."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from serve_helpers import API, ServerProcess

TOKEN = "fuzzing-token-1234"


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(tmp_path):
    with ServerProcess(tmp_path / "data", "--frames", "4", "--max-queue", "20", token=TOKEN) as server:
        run = subprocess.run(
            [str(Path(sys.executable).with_name("st")), "run", server.url + API + "/openapi.json",
             "--checks", "not_a_server_error", "--header", f"Authorization: Bearer {TOKEN}",
             "--max-examples", "60", "--seed", "15", "--workers", "1", "--request-timeout", "30"],
            capture_output=True, text=True, timeout=600)
        tail = (run.stdout + run.stderr)[-4000:]
        assert run.returncode == 0, tail
        generated = re.search(r"(\d+) generated, (\d+) passed", tail)
        assert generated and int(generated[1]) == int(generated[2]) > 300, tail  # all 9 operations, stateful runs too
        # the fuzzed uploads queued real jobs: they end with scan statuses, not crashes
        jobs = server.get(f"{API}/jobs?limit=500").json()["jobs"]
    assert all(job["status"] != "internal_error" for job in jobs), [j for j in jobs if j["status"] == "internal_error"]
