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


@contextmanager
def app_client(runs_dir: Path, tmp_path_factory):
    """(workspace, gradio_client.Client) of an app on ``runs_dir`` with empty caches, for a module's fixture."""
    import gradio_client

    from core import explorer

    explorer.clear_caches()
    with running_app(runs_dir, tmp_path_factory.mktemp("cache")) as (demo, url):
        dl = str(tmp_path_factory.mktemp("dl"))
        yield demo.explorer_context.ws, gradio_client.Client(url, verbose=False, download_files=dl)
