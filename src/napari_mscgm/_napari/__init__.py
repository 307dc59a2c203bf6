"""The napari plugin: the only place with Qt, magicgui or napari imports.

- ``napari.yaml``: the npe2 manifest.
- :mod:`.widget`: the "Restore (MSCGM)" dock widget (Qt).
- :mod:`.worker`: the job a run does, off the main thread (napari's ``thread_worker``).
- :mod:`.layers`: turning a result into well-placed, well-labelled layers.
- :mod:`.settings`: the widget's persisted choices (QSettings).
- :mod:`.helpers`: pure functions (no Qt), unit-tested on their own.
- :mod:`.sample_data`, :mod:`.writer`: npe2 sample data and writer (no torch import).
"""
