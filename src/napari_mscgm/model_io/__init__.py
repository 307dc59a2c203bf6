"""Weights in and out: safetensors files with every check, and the bundled models.

- :mod:`.weights`: save and load MSCGM and CARE weights (never a pickle).
- :mod:`.bundled`: the models shipped in the package, with their SHA-256.
"""
