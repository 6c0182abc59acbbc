"""`fakescope serve`: the web service and page (one process for the API, worker processes for scans).

    store.py   the SQLite job store under --data-dir (restart-safe)
    worker.py  a scan worker process: one Scanner, jobs from the store
    pool.py    starts, watches and restarts the workers; the per-job time limit
    upload.py  multipart uploads streamed to disk under a byte cap
    app.py     the FastAPI app: REST API under /api/v1 and the page (static/)
    cli.py     the command
"""
