import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError

from napari_mscgm import InputError, ModelConfig, __version__
from napari_mscgm.config import GeneratorConfig, NetworksConfig, NormalizationConfig
from napari_mscgm.device import available_devices, resolve_device


def test_core_imports_no_gui_toolkit():
    code = (
        "import sys, napari_mscgm, napari_mscgm.cli, napari_mscgm.pipeline, napari_mscgm.io\n"
        "bad = [m for m in ('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari', 'magicgui')"
        " if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version():
    assert __version__.count(".") == 2


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == available_devices()[0].split(":")[0]
    assert available_devices()[-1] == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda:0")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("gpu-please")


def test_cpu_uses_available_cores():
    import os

    resolve_device("cpu")
    assert torch.get_num_threads() == len(os.sched_getaffinity(0))


def test_config_validation():
    with pytest.raises(ValidationError, match="generators"):
        ModelConfig(levels=3)  # default has 2 generators
    with pytest.raises(ValidationError, match="scale 1"):
        ModelConfig(task="denoising", scale=2)
    with pytest.raises(ValidationError):
        ModelConfig(scale=3)
    with pytest.raises(ValidationError, match="below pmax"):
        NormalizationConfig(pmin=50, pmax=10)
    with pytest.raises(ValidationError):
        ModelConfig(unknown_field=1)
    ok = ModelConfig(levels=3, networks=NetworksConfig(generators=(GeneratorConfig(),) * 3))
    assert ModelConfig.model_validate_json(ok.model_dump_json()) == ok
