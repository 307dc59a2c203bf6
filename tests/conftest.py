"""Shared fixtures: tiny models that keep the suite fast on a 2-core CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mscgm import MSCGM, ModelConfig, save_model
from napari_mscgm.config import GeneratorConfig, NetworksConfig, PhysicsConfig, UNetConfig


@pytest.fixture(autouse=True)
def user_models(tmp_path_factory, monkeypatch):
    """An empty user model folder per test: the developer's own models never leak in."""
    folder = tmp_path_factory.mktemp("user-models")
    monkeypatch.setenv("NAPARI_MSCGM_MODELS", str(folder))
    # and the widget settings go to a file of the test's own, never to the user's
    monkeypatch.setenv("NAPARI_MSCGM_SETTINGS", str(folder.parent / f"{folder.name}.ini"))
    return folder


def tiny_config(*, scale: int = 2, levels: int = 2, name: str = "tiny") -> ModelConfig:
    return ModelConfig(
        name=name,
        task="super-resolution" if scale > 1 else "denoising",
        scale=scale,
        levels=levels,
        networks=NetworksConfig(
            unet=UNetConfig(base_channels=8, channel_mults=(1, 2)),
            generators=tuple(
                GeneratorConfig(base_channels=8, channel_mults=(1, 2)) for _ in range(levels)
            ),
        ),
        physics=PhysicsConfig(
            input_pixel_size_um=0.65 / (2 / scale) if scale > 1 else 0.325,
            target_pixel_size_um=0.325,
            input_na=0.4,
            target_na=0.75,
            emission_wavelength_um=0.52,
        ),
    )


def trained_like(model: MSCGM) -> MSCGM:
    """Give the zero-initialised generator outputs random weights, as training would.

    A fresh generator adds no detail at all; the tests want every part of the
    chain to contribute to the output.
    """
    with torch.no_grad():
        for generator in model.generators:
            torch.nn.init.normal_(generator.core.out_conv.weight, std=0.01)
    return model


@pytest.fixture(scope="session")
def tiny_model() -> MSCGM:
    torch.manual_seed(0)
    return trained_like(MSCGM(tiny_config())).eval()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, tiny_model) -> str:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_model(tiny_model, path)
    return str(path)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def notifications(monkeypatch) -> list[tuple[str, str]]:
    """The widget's error/warning/info notifications, recorded as (kind, message)."""
    from napari_mscgm._napari import (
        widget as _widget,  # Qt: imported only by the tests that use the widget
    )

    seen: list[tuple[str, str]] = []
    for kind in ("error", "warning", "info"):
        monkeypatch.setattr(
            _widget, f"show_{kind}", lambda msg, kind=kind: seen.append((kind, msg))
        )
    return seen


@pytest.fixture
def viewer_widget(make_napari_viewer, tiny_weights):
    """A viewer with the widget opened through the manifest, set for fast tiny-model runs."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-mscgm", "Restore (MSCGM)")
    widget.set_model(tiny_weights)
    widget.steps.value = 2
    widget.tile_size.value = 64
    widget.overlap.value = 8
    return viewer, widget


@pytest.fixture
def tiny_generalists(tmp_path, monkeypatch):
    """Tiny stand-ins for fluo-denoise and fluo-sr2x (the tests must not depend on them)."""
    paths = {}
    for task, scale in (("denoise", 1), ("sr2x", 2)):
        torch.manual_seed(0)
        model = trained_like(MSCGM(tiny_config(scale=scale, name=f"tiny-{task}")))
        paths[task] = str(save_model(model, tmp_path / f"tiny-{task}.safetensors"))
    from napari_mscgm.training import microscope

    monkeypatch.setattr(microscope, "generalist_for", lambda spec: paths[spec.task])
    return paths
