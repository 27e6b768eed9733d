"""Loss and training options, each against a hand-computed case: auxiliary loss, class weights reaching
the loss, label smoothing, weight EMA, flip test-time augmentation, photometric augmentation, classification
class weights, resuming ended runs, GradScaler state and bfloat16 autocast on a CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision import tv_tensors

from core.data.transforms import AugmentConfig, RandomGamma, train_transforms
from core.inference import Predictor
from core.runs import load_run
from core.tasks import ClassificationTask, SegmentationTask, merge_flipped, predict_logits
from core.train import main as train_main
from core.train import train
from core.train.config import TrainConfig
from core.train.optim import ema_model, load_scaler_state
from core.train.setup import compute_class_weights
from tests.train.test_train import TINY


def _logits(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_auxiliary_loss_is_added_with_its_weight():
    main, aux = _logits([2.0, 0.0]), _logits([0.0, 1.0])
    target = torch.tensor([0])
    ce_main = math.log(1 + math.exp(-2.0))  # -log softmax(main)[0]
    ce_aux = math.log(1 + math.exp(1.0))
    task = SegmentationTask(2, 255, aux_weight=0.4)
    assert task.loss({"out": main, "aux": aux}, target).item() == pytest.approx(ce_main + 0.4 * ce_aux, rel=1e-6)
    assert task.loss({"out": main}, target).item() == pytest.approx(ce_main, rel=1e-6)
    assert SegmentationTask(2, 255, aux_weight=0.0).loss({"out": main, "aux": aux}, target).item() == pytest.approx(
        ce_main, rel=1e-6
    )


def test_class_weights_reach_the_loss():
    logits = _logits([1.0, 0.0], [1.0, 0.0])
    target = torch.tensor([0, 1])
    ce0, ce1 = math.log(1 + math.exp(-1.0)), math.log(1 + math.exp(1.0))
    weighted = SegmentationTask(2, 255, torch.tensor([1.0, 3.0])).loss({"out": logits}, target).item()
    assert weighted == pytest.approx((1 * ce0 + 3 * ce1) / (1 + 3), rel=1e-6)  # weighted mean, as cross_entropy defines
    assert SegmentationTask(2, 255).loss({"out": logits}, target).item() == pytest.approx((ce0 + ce1) / 2, rel=1e-6)


def test_engine_passes_the_recorded_class_weights_to_the_loss(tmp_path, monkeypatch):
    seen = []
    original = SegmentationTask.loss

    def spy(self, output, target):
        seen.append(None if self.weight is None else self.weight.tolist())
        return original(self, output, target)

    monkeypatch.setattr(SegmentationTask, "loss", spy)
    out = tmp_path / "run"
    assert (
        train_main(TINY + ["--data-opt", "num_images=4", "--epochs", "1", "--class-weighting", "median", "--out", str(out)]) == 0
    )
    recorded = load_run(out).config["train"]["class_weights"]
    assert len(recorded) == 11 and len(set(recorded)) > 2
    assert seen and all(w == pytest.approx(recorded) for w in seen)


def test_label_smoothing_matches_the_formula():
    logits, target, e = _logits([2.0, 0.0, -1.0]), torch.tensor([0]), 0.1
    logp = logits.log_softmax(1)[0]
    expected = -((1 - e) * logp[0] + e * logp.mean())  # (1-e) one-hot + e uniform over K classes
    task = SegmentationTask(3, 255, label_smoothing=e)
    assert task.loss({"out": logits}, target).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="label smoothing"):
        SegmentationTask(3, 255, label_smoothing=1.0)


def test_ema_warms_up_then_follows_the_decay():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = ema_model(model, 0.9)
    values = []
    for w in (1.0, 2.0, 3.0, 4.0):
        model.weight.data.fill_(w)
        ema.update_parameters(model)
        values.append(ema.module.weight.item())
    # first update copies; then decay d_n = min(0.9, (1 + n) / (10 + n)) with n = updates so far
    expected = [1.0]
    for n, w in zip((1, 2, 3), (2.0, 3.0, 4.0)):
        d = min(0.9, (1 + n) / (10 + n))
        expected.append(d * expected[-1] + (1 - d) * w)
    assert values == pytest.approx(expected)
    with pytest.raises(ValueError, match="decay"):
        ema_model(model, 1.5)


def test_flip_tta_averages_the_probabilities_of_the_mirror():
    class Asymmetric(torch.nn.Module):  # class 0 likes the left half, whatever the image
        def forward(self, x):
            w = x.shape[-1]
            ramp = torch.linspace(1, -1, w).expand(x.shape[0], 1, x.shape[-2], w)
            return {"out": torch.cat([ramp, -ramp], 1)}  # (B, 2, H, W)

    x = torch.zeros(1, 3, 2, 4)
    plain = predict_logits(Asymmetric(), x)
    tta = predict_logits(Asymmetric(), x, tta_flip=True)
    p = plain.softmax(1)
    expected = (p + p.flip(-1)) / 2  # the mirror's probabilities, flipped back
    torch.testing.assert_close(tta.exp(), expected)
    torch.testing.assert_close(tta.exp()[:, 0], torch.full((1, 2, 4), 0.5))  # symmetric by construction
    torch.testing.assert_close(merge_flipped(_logits([0.0, 1.0]), _logits([1.0, 0.0])).exp(), torch.full((1, 2), 0.5))


def test_random_gamma_changes_images_only():
    image = tv_tensors.Image(torch.full((3, 4, 4), 128, dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.arange(16).reshape(4, 4))
    torch.manual_seed(3)
    gamma = RandomGamma(0.5).make_params([])["gamma"]
    torch.manual_seed(3)
    out_image, out_mask = RandomGamma(0.5)(image, mask)
    expected = round(255 * (128 / 255) ** gamma)  # adjust_gamma on a uint8 image
    assert abs(gamma - 1) > 0.1 and torch.equal(out_mask, mask)
    assert (out_image.int() - expected).abs().max() <= 1
    gammas = [RandomGamma(0.5).make_params([])["gamma"] for _ in range(200)]
    assert 0.5 <= min(gammas) and max(gammas) <= 1.5 and np.std(gammas) > 0.2
    with pytest.raises(ValueError):
        RandomGamma(1.0)


def test_photometric_augmentation_never_touches_labels():
    aug = AugmentConfig(hflip=0.0, scale=None, color_jitter=0.4, gamma_jitter=0.4, blur=1.0)
    tf = train_transforms(size=None, augment=aug, mean=(0.5,) * 3, std=(0.5,) * 3, ignore_index=11)
    ops = [type(op).__name__ for op in tf.transforms]
    assert {"ColorJitter", "RandomGamma", "RandomApply"} <= set(ops)
    torch.manual_seed(1)
    image = tv_tensors.Image(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.randint(0, 11, (8, 8)))
    _, out_mask = tf(image, mask)
    assert torch.equal(out_mask, mask.as_subclass(torch.Tensor))


def test_classification_class_weights_come_from_label_counts():
    class Labels:
        task, num_classes = ClassificationTask, 3

        def __init__(self, labels):
            self.labels = labels

        def __len__(self):
            return len(self.labels)

        def load(self, i):
            return None, self.labels[i]

    ds = Labels([0, 0, 0, 1])  # frequencies 3/4, 1/4, 0
    inverse = compute_class_weights(ds, "inverse", progress=False)
    assert inverse == pytest.approx([0.25, 0.75, 0.0])  # 1/f normalised: (4/3, 4) / (16/3)
    median = compute_class_weights(ds, "median", progress=False)
    assert median == pytest.approx([0.5 / 0.75, 0.5 / 0.25, 0.0])  # median(f) = 0.5 over the seen classes
    assert compute_class_weights(ds, "none", progress=False) is None


def test_resuming_an_ended_run_is_a_no_op_unless_extended(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(TINY + ["--data-opt", "num_images=4", "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "history.jsonl").read_bytes()
    assert train_main(["--resume", str(out), "--no-progress", "--threads", "1"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    run = load_run(out)
    assert run.status["state"] == "finished" and (out / "history.jsonl").read_bytes() == before
    assert train_main(["--resume", str(out), "--epochs", "2", "--no-progress", "--threads", "1"]) == 0
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2] and run.status["state"] == "finished"
    assert run.config["train"]["epochs"] == 2


def test_early_stopped_run_is_not_trained_further_by_a_plain_resume(tmp_path):
    out = tmp_path / "run"
    args = TINY + ["--data-opt", "num_images=4", "--epochs", "6", "--lr", "0", "--patience", "1", "--out", str(out)]
    assert train_main(args) == 0
    run = load_run(out)
    assert run.status["state"] == "early_stopped"
    epochs = [r["epoch"] for r in run.history]
    assert train_main(["--resume", str(out), "--no-progress", "--threads", "1"]) == 0
    assert [r["epoch"] for r in load_run(out).history] == epochs and load_run(out).status["state"] == "early_stopped"


def test_resume_with_an_enabled_grad_scaler_accepts_a_cpu_runs_empty_state(tmp_path, monkeypatch):
    """A run trained on the CPU stores GradScaler state {}; resuming it where the scaler is on (CUDA) must work."""
    enabled = torch.amp.GradScaler("cpu", enabled=True)
    load_scaler_state(enabled, {})  # torch's own load_state_dict({}) raises here
    assert enabled.get_scale() == 65536.0
    source = torch.amp.GradScaler("cpu", init_scale=8.0)
    load_scaler_state(enabled, source.state_dict())
    assert enabled.get_scale() == 8.0

    out = tmp_path / "run"
    cfg = TrainConfig.from_dict(
        {
            **TrainConfig(epochs=1).to_dict(),
            "arch": "unet",
            "model_args": {"base_width": 4, "depth": 2},
            "data_options": {"num_images": 4, "size": [32, 32]},
            "size": (32, 32),
            "out": str(out),
            "workers": 0,
            "threads": 1,
            "progress": False,
            "batch_size": 2,
        }
    )
    train(cfg)
    monkeypatch.setattr(
        torch.amp, "GradScaler", lambda device, enabled=True: torch.amp.grad_scaler.GradScaler("cpu", enabled=True)
    )
    train(cfg, resume=out, epochs=2)
    assert [r["epoch"] for r in load_run(out).history] == [1, 2]


def test_ema_and_tta_runs_save_and_serve_what_they_validated(tmp_path):
    out = tmp_path / "run"
    args = TINY + ["--data-opt", "num_images=6", "--epochs", "2", "--ema", "0.9", "--tta-flip", "--out", str(out)]
    assert train_main(args) == 0
    run = load_run(out)
    assert run.config["train"]["ema"] == 0.9 and run.config["train"]["tta_flip"] is True
    state = torch.load(out / "state" / "last.pt", weights_only=True)
    ema_weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    saved = run.build_model(2).state_dict()
    for k, v in saved.items():
        torch.testing.assert_close(v, ema_weights[k])  # the snapshot is the averaged model
    assert any(not torch.equal(state["model"][k], ema_weights[k]) for k in saved if saved[k].is_floating_point())
    # the Predictor follows the run's flip setting, and can be told otherwise
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert Predictor(run, 2, device="cpu").tta_flip and not Predictor(run, 2, device="cpu", tta_flip=False).tta_flip
    with_tta = Predictor(run, 2, device="cpu").predict([image])[0].probs
    model = run.build_model(2)
    x = Predictor(run, 2, device="cpu").preprocess([image])[0]
    with torch.inference_mode():
        p = F.softmax(model(x)["out"], 1) + F.softmax(model(x.flip(-1))["out"], 1).flip(-1)
    np.testing.assert_allclose(with_tta, (p / 2)[0].numpy(), atol=1e-5)


def test_bf16_autocast_on_the_cpu_computes_in_bfloat16_and_keeps_float32_weights(tmp_path):
    """``--amp bf16`` runs the convolutions in bfloat16 on a CPU; ``auto`` leaves a CPU in float32."""
    from core.train.engine import autocast_context

    conv, x, cpu = torch.nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8), torch.device("cpu")
    with autocast_context(cpu, "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with autocast_context(cpu, "auto"):
        assert conv(x).dtype == torch.float32
    out = tmp_path / "run"
    assert train_main(TINY + ["--data-opt", "num_images=4", "--epochs", "1", "--amp", "bf16", "--out", str(out)]) == 0
    run = load_run(out)
    assert run.config["train"]["amp"] == "bf16" and run.config["runtime"]["precision"] == "bfloat16"
    assert math.isfinite(run.history[0]["train_loss"])
    assert all(v.dtype == torch.float32 for v in run.build_model(1).state_dict().values() if v.is_floating_point())


def test_camvid_bench_passes_its_amp_option_to_the_run():
    from bench.camvid import parse_args, recipe_config

    args = ["--recipe", "zoo15", "--arch", "unet", "--budget-min", "15", "--holdout", "0006R0", "--out", "x"]
    assert recipe_config(parse_args(args)).amp == "auto"
    cfg = recipe_config(parse_args(args + ["--amp", "bf16"]))
    assert cfg.amp == "bf16" and cfg.arch == "unet" and cfg.val_split == "holdout"
