"""The Confusion tab at 150 classes against 11, in Chromium at 1600x1000 (the fixture of tests/many_classes.py):
the server's /confusion latency through gradio_client, and the time from the tab's click to the matrix, the most
confused pairs and the confusion map all shown, on a page left idle after loading and right after loading.

    python bench/many_classes.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.app.test_browser import ARGS, CHROMIUM  # noqa: E402
from tests.app_server import running_app  # noqa: E402
from tests.many_classes import FEW, MANY, make_runs  # noqa: E402

READY = (
    "() => document.querySelectorAll('#confusion-matrix .xtick text').length > 0"
    " && [...document.querySelectorAll('#confusion-map img')].some(e => e.complete && e.naturalWidth > 0)"
    " && document.querySelectorAll('#confusion-pairs [role=row][data-index]').length > 0"
)


def tab_ready(page, url: str, settle: float) -> float:
    """Seconds from the Confusion tab's click to its views shown, ``settle`` seconds after the page loaded."""
    page.goto(url)
    page.get_by_role("tab", name="Confusion").wait_for()
    time.sleep(settle)
    t0 = time.perf_counter()
    page.get_by_role("tab", name="Confusion").click()
    page.wait_for_function(READY, timeout=120_000)
    return time.perf_counter() - t0


def measure(fx, repeats: int) -> dict[str, float]:
    import playwright.sync_api as pw
    from gradio_client import Client

    root = Path(tempfile.mkdtemp())
    with running_app(make_runs(root, fx), root / "cache") as (_, url):
        client = Client(url, verbose=False)
        server = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            client.predict("run-a", 2, api_name="/confusion")
            server.append(time.perf_counter() - t0)
        with pw.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            tab_ready(page, url, 0)  # cold: first renders and predictions
            idle = [tab_ready(page, url, 10) for _ in range(repeats)]
            loading = [tab_ready(page, url, 0) for _ in range(repeats)]
            height = page.evaluate("() => document.body.scrollHeight")
            browser.close()
    return {
        "/confusion (s)": statistics.median(server),
        "tab ready, idle page (s)": statistics.median(idle),
        "tab ready, just loaded (s)": statistics.median(loading),
        "page height (px)": height,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = {f"{fx.k} classes": measure(fx, args.repeats) for fx in (MANY, FEW)}
    keys = list(next(iter(rows.values())))
    print("| | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
