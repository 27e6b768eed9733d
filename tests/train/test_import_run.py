"""import_run brings in checkpoints of other libraries: state dicts with or without a wrapper prefix, smp's
save_pretrained folders, and plugin models; a state dict that does not fit names its keys."""

from __future__ import annotations

import pytest
import torch

from core.runs import load_run
from core.train.import_run import main as import_main

smp = pytest.importorskip("segmentation_models_pytorch")
timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")

SEG = ["--dataset", "synthstreets", "--data-opt", "num_images=4", "--data-opt", "size=[48,64]", "--size", "48", "64"]
CLS = ["--dataset", "crops:synthstreets", "--data-opt", "num_images=3", "--data-opt", "size=[48,64]", "--size", "32", "32"]


def test_a_prefixed_torchvision_state_dict_loads(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.segmentation.lraspp_mobilenet_v3_large(num_classes=11, weights_backbone=None)
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "lightning.ckpt")
    out = tmp_path / "imported"
    assert import_main([str(tmp_path / "lightning.ckpt"), "--arch", "tv:lraspp_mobilenet_v3_large", *SEG, "--out", str(out)]) == 0
    run = load_run(out)
    assert run.arch == "tv:lraspp_mobilenet_v3_large" and run.epochs == [1]
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(run.build_model(1)(x)["out"], net.eval()(x)["out"], rtol=0, atol=1e-5)


def test_an_smp_save_pretrained_folder_names_its_own_model(tmp_path):
    net = smp.Unet("resnet18", encoder_depth=3, decoder_channels=[16, 8, 8], encoder_weights=None, classes=11)
    net.save_pretrained(tmp_path / "my-unet")
    out = tmp_path / "imported"
    assert import_main([str(tmp_path / "my-unet"), *SEG, "--out", str(out)]) == 0
    run = load_run(out)
    assert run.arch == "smp:Unet" and run.model_args["encoder_depth"] == 3 and run.model_args["classes"] == 11


def test_a_state_dict_that_does_not_fit_lists_its_keys(tmp_path, capsys):
    net = timm.create_model("resnet18", num_classes=11)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}  # DDP's prefix
    torch.save(state, tmp_path / "ddp.pt")
    assert import_main([str(tmp_path / "ddp.pt"), "--arch", "timm:resnet18", *CLS, "--out", str(tmp_path / "ok")]) == 0
    assert load_run(tmp_path / "ok").arch == "timm:resnet18"
    code = import_main([str(tmp_path / "ddp.pt"), "--arch", "timm:resnet34", *CLS, "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit timm:resnet34" in err
    # the first 10 missing names, then a count of the rest (the state dict of a ResNet-18 lacks ResNet-34's blocks)
    assert "tensors 96 missing (layer1.2.conv1.weight, layer1.2.bn1.weight," in err and "and 86 more)" in err
    assert not (tmp_path / "bad").exists()


PLUGIN = """
from torch import nn
from core.models import SegmentationModel, register_model
from core.tasks import SegmentationTask

class Tiny(SegmentationModel):
    def __init__(self, *, num_classes):
        super().__init__(num_classes=num_classes, in_channels=3)
        self.conv, self.feature_dim = nn.Conv2d(3, num_classes, 1), num_classes
    def forward_padded(self, x):
        y = self.conv(x)
        return {"out": y, "features": y}

@register_model("import_plugin_net", task=SegmentationTask)
def import_plugin_net(*, num_classes: int) -> Tiny:
    \"\"\"A plugin model for the import test.\"\"\"
    return Tiny(num_classes=num_classes)
"""


def test_plugins_register_models_before_the_import(tmp_path, monkeypatch):
    (tmp_path / "import_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.save({"conv.weight": torch.randn(11, 3, 1, 1), "conv.bias": torch.zeros(11)}, tmp_path / "p.pt")
    args = [str(tmp_path / "p.pt"), "--arch", "import_plugin_net", *SEG, "--out", str(tmp_path / "p")]
    assert import_main(args + ["--plugins", "import_plugin"]) == 0
    assert import_main(args[:-1] + [str(tmp_path / "q"), "--plugins", "no_such_plugin_module"]) == 2
