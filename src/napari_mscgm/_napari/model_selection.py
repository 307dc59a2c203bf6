"""Choosing the model in the Restore widget: bundled and user models, files, the model card.

A mixin of :class:`~napari_mscgm._napari.widget.RestoreWidget`: it works on the
widget's ``model`` combo box, ``model_card`` label and Run / Preview buttons.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QFileDialog

from ..errors import MSCGMError
from ..model_io.bundled import DEFAULT_MODEL
from ..model_io.catalog import catalog, list_models, model_path
from ..model_io.weights import read_model_config
from ..restoration.guard import pixel_size_mismatch
from .helpers import SAMPLE_KEY, model_summary, pixel_size_warning, recommended_model

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ["LOAD_FROM_FILE", "ModelSelection", "models_changed"]

LOAD_FROM_FILE = "load from file…"

#: The open model selectors, told when a model is added (by the Train widget).
_SELECTORS: weakref.WeakSet = weakref.WeakSet()


def models_changed() -> None:
    """Make every open Restore widget read its model list again."""
    for selector in list(_SELECTORS):
        with contextlib.suppress(RuntimeError):  # its Qt object is already deleted
            selector.refresh_models()


class ModelSelection:
    """The model combo box's behaviour: choices, file dialog, card, defaults."""

    _extra_models: list[str]
    _previous_model: str | None
    _model_config: ModelConfig | None
    _loading_settings: bool
    model: Any
    model_card: Any

    def _watch_models(self) -> None:
        """Follow :func:`models_changed` (called once, from the widget's constructor)."""
        _SELECTORS.add(self)

    def _bundled_in_order(self) -> list[str]:
        """The bundled and user models, the default first (it wins a tie)."""
        return sorted(list_models(), key=lambda name: name != DEFAULT_MODEL)

    def _model_choices(self) -> list[tuple[str, str]]:
        entries, _ = catalog()
        named = [
            (f"{name} ({entries[name].source if name in entries else 'bundled'})", name)
            for name in self._bundled_in_order()
        ]
        files = [(Path(p).name, p) for p in self._extra_models]
        return [*named, *files, (LOAD_FROM_FILE, LOAD_FROM_FILE)]

    def refresh_models(self) -> None:
        """Read the model list again (a model was just trained or copied in)."""
        value = self.model.value
        self.model.choices = self._model_choices()
        if value in [v for _, v in self._model_choices()]:
            self.model.value = value

    # ------------------------------------------------------------- model
    @property
    def model_config(self) -> ModelConfig | None:
        """The selected model's configuration (read from its file header), if any."""
        return self._model_config

    def set_model(self, name_or_path: str | os.PathLike) -> None:
        """Select a bundled model by name or a ``.safetensors`` file by path."""
        ref = str(name_or_path)
        if ref not in list_models():
            ref = str(Path(ref).expanduser().resolve())
            if ref not in self._extra_models:
                self._extra_models.append(ref)
            self.model.choices = self._model_choices()
        self.model.value = ref

    def _suggest_model(self, layer: Any) -> str | None:
        """Pick the model recommended for ``layer`` when the current one does not fit it.

        A bundled sample gets the model it is made for; another layer, when the chosen
        model expects another pixel size, the bundled model closest to its own.
        """
        if layer is None or self.is_running:
            return None
        configs = {n: read_model_config(model_path(n)) for n in self._bundled_in_order()}
        size = float(layer.scale[-1])
        suggested = recommended_model(size, dict(layer.metadata), configs)
        config = self._model_config
        fits = config is not None and pixel_size_mismatch(size, config) is None
        if suggested is None or suggested == self.model.value:
            return None
        if SAMPLE_KEY in layer.metadata or not fits:
            self.model.value = suggested
            return suggested
        return None

    def _on_model_activated(self, index: int) -> None:
        if self.model.native.itemText(index) == LOAD_FROM_FILE:
            self._choose_model_file()

    def _on_model_changed(self, value: str) -> None:
        if value == LOAD_FROM_FILE:
            self._update_model_card()
            return
        self._previous_model = value
        self._update_model_card(reset_defaults=not self._loading_settings)
        self._update_pixel_warning()
        self._save_settings()

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load MSCGM weights", str(Path.home()), "MSCGM weights (*.safetensors)"
        )
        if path:
            self.set_model(path)
        elif self._previous_model is not None:
            self.model.value = self._previous_model
        else:
            self._update_model_card()

    def _update_model_card(self, reset_defaults: bool = False) -> None:
        ref = self.model.value
        self._model_config = None
        if ref in (None, LOAD_FROM_FILE):
            if not list_models():
                self.model_card.value = (
                    "No bundled model is installed: choose 'load from file…' and pick a "
                    ".safetensors weights file."
                )
            else:
                self.model_card.value = "Choose a model."
            self.run_button.enabled = self.preview_button.enabled = False
            return
        path = model_path(ref) if ref in list_models() else Path(ref)
        try:
            config = read_model_config(path)
        except MSCGMError as exc:
            self.model_card.value = f"Cannot read this model: {exc}"
            self.run_button.enabled = self.preview_button.enabled = False
            return
        self._model_config = config
        self.model_card.value = model_summary(config)
        trained_on = f"Trained on: {config.training.data}" if config.training.data else ""
        self.model_card.tooltip = (
            "\n".join(t for t in (config.description, trained_on) if t) or None
        )
        if not self.is_running:
            self.run_button.enabled = self.preview_button.enabled = True
        if reset_defaults:
            self.steps.value = min(max(config.bbdp.default_steps, 1), 200)
            self.eta.value = config.bbdp.default_eta

    def _update_pixel_warning(self, *_: Any) -> None:
        layer, config = self.layer.value, self._model_config
        warning = None
        if layer is not None and config is not None:
            warning = pixel_size_warning(layer.name, float(layer.scale[-1]), config)
        self.pixel_warning.visible = warning is not None
        if warning is not None:
            self.pixel_warning.value = warning
