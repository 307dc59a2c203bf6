"""The Restore widget's persisted choices, so that they survive a restart.

Where the installed napari reads npe2 ``configurations`` (napari >= 0.9), they live in
napari's plugin settings (the manifest's ``restore`` section, shown in napari's
Preferences); elsewhere, and whenever ``NAPARI_MSCGM_SETTINGS`` names an ``.ini`` file
(tests, kiosks), in QSettings.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox
from qtpy.QtCore import QSettings

__all__ = ["APPLICATION", "ORGANISATION", "SETTINGS_ENV", "WidgetSettings", "napari_section"]

#: QSettings organisation and application: where the widget's choices persist.
ORGANISATION = "napari-mscgm"
APPLICATION = "restore-widget"
#: Path of an ``.ini`` file to use instead of the user's settings (tests, kiosks).
SETTINGS_ENV = "NAPARI_MSCGM_SETTINGS"


def napari_section() -> Any:
    """napari's plugin settings for the Restore widget, or None where napari has none."""
    try:
        from napari.settings import get_plugin_settings

        return get_plugin_settings(ORGANISATION).restore
    except (ImportError, KeyError, AttributeError, TypeError):
        return None


class _QtStore:
    """QSettings: any value by name."""

    def __init__(self, path: str | None) -> None:
        if path:
            self._qt = QSettings(path, QSettings.Format.IniFormat)
        else:
            self._qt = QSettings(ORGANISATION, APPLICATION)

    def get(self, name: str) -> Any:
        return self._qt.value(name, None)

    def set(self, name: str, value: Any) -> None:
        self._qt.setValue(name, value)

    def get_list(self, name: str) -> list[str]:
        files = self._qt.value(name, [])
        return [files] if isinstance(files, str) else list(files or [])

    def set_list(self, name: str, values: list[str]) -> None:
        self._qt.setValue(name, list(values))

    def sync(self) -> None:
        self._qt.sync()


class _NapariStore:
    """napari's plugin settings: typed fields, saved by napari on change; nothing is read
    back until the widget has saved once (``saved``), so a model brings its defaults."""

    def __init__(self, section: Any) -> None:
        self._section = section

    def get(self, name: str) -> Any:
        if not self._section.saved:
            return None
        value = getattr(self._section, name, None)
        return None if value == "" else value

    def set(self, name: str, value: Any) -> None:
        with contextlib.suppress(ValueError, TypeError, AttributeError):  # out of its schema
            setattr(self._section, name, value)

    def get_list(self, name: str) -> list[str]:
        text = self.get(name) or ""
        return [p for p in str(text).split(os.pathsep) if p]

    def set_list(self, name: str, values: list[str]) -> None:
        self.set(name, os.pathsep.join(values))

    def sync(self) -> None:
        self._section.saved = True


class WidgetSettings:
    """Read and write the values of named magicgui controls, the model and model files."""

    def __init__(self) -> None:
        path = os.environ.get(SETTINGS_ENV)
        section = None if path else napari_section()
        self._store = _NapariStore(section) if section is not None else _QtStore(path)

    @property
    def backend(self) -> str:
        """``"napari"`` (npe2 configurations) or ``"qsettings"``."""
        return "napari" if isinstance(self._store, _NapariStore) else "qsettings"

    def save(self, controls: dict[str, Any], model: str | None, model_files: list[str]) -> None:
        for name, widget in controls.items():
            self._store.set(name, widget.value)
        if model is not None:
            self._store.set("model", model)
        self._store.set_list("model_files", list(model_files))
        self._store.sync()

    def model(self) -> str | None:
        return self._store.get("model")

    def model_files(self) -> list[str]:
        """The model files chosen before that still exist."""
        return [f for f in self._store.get_list("model_files") if Path(f).is_file()]

    def load(self, controls: dict[str, Any]) -> None:
        """Set each control to its stored value, where one is stored and still valid."""
        for name, widget in controls.items():
            stored = self._store.get(name)
            if stored is None:
                continue
            with contextlib.suppress(TypeError, ValueError):
                if isinstance(widget, ComboBox):  # INI files store text: match it
                    matches = [c for c in widget.choices if str(c) == str(stored)]
                    if matches:
                        widget.value = matches[0]
                else:
                    widget.value = type(widget.value)(stored)
