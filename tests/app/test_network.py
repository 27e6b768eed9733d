"""Network exposure: nothing outside the allowed roots is served through any file route, the app binds
127.0.0.1 by default, and listening wider prints what is exposed."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from core.explorer import clear_caches
from tests.app_server import running_app


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_no_file_route_serves_files_outside_the_allowed_roots(explorer_runs, tmp_path):
    state = explorer_runs / "seg-a" / "state" / "last.pt"
    assert state.exists()
    clear_caches()
    with running_app(explorer_runs, tmp_path / "cache") as (demo, url):
        base = url.rstrip("/")
        assert demo.local_url.startswith("http://127.0.0.1:")  # the default host
        targets = ["/etc/passwd", str(state), str(explorer_runs / "seg-a" / "run.json")]
        attempts = []
        for target in targets:
            enc = urllib.parse.quote(target)
            dotted = "/../" * 6 + target.lstrip("/")
            for prefix in ("/file=", "/gradio_api/file=", "/gradio_api/file/"):
                attempts += [
                    f"{base}{prefix}{target}",
                    f"{base}{prefix}{enc}",
                    f"{base}{prefix}{dotted}",
                    f"{base}{prefix}{urllib.parse.quote(dotted, safe='')}",
                    f"{base}{prefix}{demo.explorer_context.cache_dir}/..{'/..' * 8}{target}",
                ]
        for attempt in attempts:
            status, body = fetch(attempt)
            assert status >= 400, f"{attempt} was served"
            assert b"root:" not in body and b"PK" not in body[:4] and b'"task"' not in body


def test_listening_beyond_localhost_prints_a_warning(explorer_runs, tmp_path, capsys, monkeypatch):
    from app.main import build_app, launch_app

    demo = build_app(explorer_runs, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(type(demo), "launch", lambda self, **kw: kw)  # no server: only what would be asked for
    kw = launch_app(demo, host="0.0.0.0", port=1)
    err = capsys.readouterr().err
    assert "warning" in err and "0.0.0.0" in err and "run its models" in err and kw["server_name"] == "0.0.0.0"
    launch_app(demo, share=True, port=1)
    assert "gradio.live" in capsys.readouterr().err
    kw = launch_app(demo, port=1)
    assert capsys.readouterr().err == "" and kw["server_name"] == "127.0.0.1" and kw["max_file_size"] == "25mb"


def test_the_command_line_binds_localhost_unless_asked():
    from app.main import build_parser

    assert build_parser().parse_args([]).host == "127.0.0.1" and not build_parser().parse_args([]).share
