"""Big splits and big uploads through the app: /hardest one page at a time (thumbnails made for that page only),
and ``--max-upload-side`` applied, said with both sizes, and refused when it makes no sense."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import explorer as A
from core.evaluation import per_image as M
from tests.app_server import running_app
from tests.conftest import ROOT

gradio_client = pytest.importorskip("gradio_client")
EXAMPLE = ROOT / "assets" / "examples" / "street_a.jpg"  # 360x270


@pytest.fixture(scope="module")
def app(explorer_runs, tmp_path_factory):
    A.clear_caches()
    with running_app(explorer_runs, tmp_path_factory.mktemp("cache"), max_upload_side=200) as (demo, url):
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
        yield demo, client


def hand_ranking(ws, members, ref) -> list[int]:
    """Images from hardest to easiest: each image's mIoU under each run, averaged, NaN last, ties by index."""
    means = []
    for i in range(ref.size()):
        _, target = ref.load(i)
        scores = [M.image_scores(A.predict_items([m], ref, [i])[0], target, 11, 11)["miou"] for m in members]
        kept = [s for s in scores if not math.isnan(s)]
        means.append(np.mean(kept) if kept else math.nan)
    return sorted(range(ref.size()), key=lambda i: (math.isnan(means[i]), means[i], i))


def test_hardest_returns_one_page_of_thumbnails_hardest_first(app):
    demo, client = app
    ws = demo.explorer_context.ws
    ref = ws.dataset("seg-a")
    members = [(ws.run("seg-a"), 2), (ws.run("seg-b"), 3)]
    order = hand_ranking(ws, members, ref)
    assert ref.size() == 16
    args = (ref.source, "val", ["seg-a", "seg-b"], [2, 3])
    gallery, index, status = client.predict(*args, 2, 5, api_name="/hardest")
    assert [int(g["caption"].split(":")[0]) for g in gallery] == order[5:10]
    assert index == order[5] and "page 2 of 4 (images 6-10 of 16)" in status
    thumbs = demo.explorer_context.thumbs_dir / ref.key()
    assert sorted(int(p.stem) for p in thumbs.glob("*.jpg")) == sorted(order[5:10])  # made for that page only
    last, _, status = client.predict(*args, 4, 5, api_name="/hardest")
    assert [int(g["caption"].split(":")[0]) for g in last] == order[15:] and "page 4 of 4" in status
    first, index, _ = client.predict(*args, api_name="/hardest")  # the old call: page 1 of 24, here all 16
    assert [int(g["caption"].split(":")[0]) for g in first] == order and index == order[0]
    _, _, status = client.predict(*args, 0, 5, api_name="/hardest")
    assert "page numbers start at 1" in status  # refused with what to enter; the app keeps serving


def test_max_upload_side_is_applied_and_the_result_names_both_sizes(app):
    _, client = app
    from gradio_client import handle_file

    _, data, status, _, _ = client.predict(handle_file(str(EXAMPLE)), ["seg-a"], 0.5, api_name="/upload")
    assert status.startswith("360×270 px, analysed at 200×150 px")
    assert (data["width"], data["height"], data["original_width"], data["original_height"]) == (200, 150, 360, 270)


def test_the_command_line_passes_max_upload_side_on_and_refuses_nonsense(monkeypatch, capsys):
    import app.main as main

    seen, real_build = {}, main.build_app
    monkeypatch.setattr(main, "build_app", lambda *a, **kw: seen.update(kw) or "demo")
    monkeypatch.setattr(main, "launch_app", lambda demo, **kw: None)
    main.main(["--max-upload-side", "2048", "--threads", "1"])
    assert seen["max_upload_side"] == 2048
    for bad in ("0", "-5", "big"):
        with pytest.raises(SystemExit):
            main.build_parser().parse_args(["--max-upload-side", bad])
        assert "argument --max-upload-side: the upload limit must be a" in capsys.readouterr().err
    with pytest.raises(ValueError, match="upload limit"):
        real_build(ROOT / "checkpoints", max_upload_side=0)  # refused before any run is read
