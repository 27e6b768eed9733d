"""Start the explorer app on a free local port for a test, and stop it afterwards."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(runs_dir: Path, cache_dir: Path, data_root: str | None = None, **options):
    """Yield ``(demo, url)`` of the app serving ``runs_dir`` in this process (so tests can count model calls);
    ``options`` go to ``build_app`` (e.g. ``max_upload_side``)."""
    from app.main import build_app, launch_app

    demo = build_app(runs_dir, data_root, cache_dir=cache_dir, **options)
    port = free_port()
    launch_app(demo, port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
