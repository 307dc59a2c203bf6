"""The Restore widget's persisted choices (QSettings), so that they survive a restart."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox
from qtpy.QtCore import QSettings

__all__ = ["APPLICATION", "ORGANISATION", "SETTINGS_ENV", "WidgetSettings"]

#: QSettings organisation and application: where the widget's choices persist.
ORGANISATION = "napari-mscgm"
APPLICATION = "restore-widget"
#: Path of an ``.ini`` file to use instead of the user's settings (tests, kiosks).
SETTINGS_ENV = "NAPARI_MSCGM_SETTINGS"


class WidgetSettings:
    """Read and write the values of named magicgui controls, the model and model files."""

    def __init__(self) -> None:
        path = os.environ.get(SETTINGS_ENV)
        if path:
            self._qt = QSettings(path, QSettings.Format.IniFormat)
        else:
            self._qt = QSettings(ORGANISATION, APPLICATION)

    def save(self, controls: dict[str, Any], model: str | None, model_files: list[str]) -> None:
        for name, widget in controls.items():
            self._qt.setValue(name, widget.value)
        if model is not None:
            self._qt.setValue("model", model)
        self._qt.setValue("model_files", list(model_files))
        self._qt.sync()

    def model(self) -> str | None:
        return self._qt.value("model", None)

    def model_files(self) -> list[str]:
        """The model files chosen before that still exist."""
        files = self._qt.value("model_files", [])
        files = [files] if isinstance(files, str) else list(files or [])
        return [f for f in files if Path(f).is_file()]

    def load(self, controls: dict[str, Any]) -> None:
        """Set each control to its stored value, where one is stored and still valid."""
        for name, widget in controls.items():
            stored = self._qt.value(name, None)
            if stored is None:
                continue
            with contextlib.suppress(TypeError, ValueError):
                if isinstance(widget, ComboBox):  # INI files store text: match it
                    matches = [c for c in widget.choices if str(c) == str(stored)]
                    if matches:
                        widget.value = matches[0]
                else:
                    widget.value = type(widget.value)(stored)
