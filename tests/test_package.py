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
        "import sys, napari_mscgm, napari_mscgm.cli, napari_mscgm.restoration.pipeline, "
        "napari_mscgm.io, napari_mscgm.training.loop, napari_mscgm.evaluation.run, "
        "napari_mscgm.simulate, napari_mscgm.model_io.weights\n"
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


def test_import_and_the_manifest_entry_points_do_not_import_torch():
    # napari reads the manifest, opens sample data and saves layers without torch.
    code = (
        "import sys, napari_mscgm\n"
        "from napari_mscgm._napari.sample_data import beads_sample, cells_sample\n"
        "from napari_mscgm._napari.writer import write_image\n"
        "assert len(beads_sample()) == 2 and len(cells_sample()) == 2\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "from napari_mscgm import restore, load_model, list_models, MeanStd, RestoreOptions\n"
        "assert callable(restore) and 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_resolve():
    import napari_mscgm

    for name in napari_mscgm.__all__:
        assert getattr(napari_mscgm, name) is not None
    # The engine's subpackage does not shadow the function of the same purpose.
    import napari_mscgm.restoration.axes
    from napari_mscgm import restore

    assert callable(restore)
    with pytest.raises(AttributeError):
        napari_mscgm.no_such_name  # noqa: B018


def test_the_library_leaves_the_thread_count_alone(tiny_weights):
    import numpy as np

    from napari_mscgm import load_model, restore

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # a user's (or a dask worker's) choice
        model = load_model(tiny_weights, device="auto")
        resolve_device("cpu")
        restore(np.ones((8, 8)), model, steps=1)
        assert torch.get_num_threads() == 1
        restore(np.ones((8, 8)), model, steps=1, threads=2)  # only when asked
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_train_threads_survive_fine_tuning(tmp_path, tiny_weights):
    # `train --threads 1 --init MODEL` used to be undone by loading MODEL.
    from napari_mscgm.cli import main

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        args = ["train", "--preset", "beads", "--n", "4", "--init", tiny_weights, "--crop", "32",
                "--bridge-iterations", "1", "--generator-iterations", "1", "--threads", "1",
                "-o", str(tmp_path / "m.safetensors")]  # fmt: skip
        assert main(args) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


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
