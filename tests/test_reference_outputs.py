"""The bundled models give bitwise the outputs they gave before the package's redesign.

``data/reference_outputs.json`` holds the SHA-256 of the float32 results of the
bundled models on the bundled samples, recorded with the code before the redesign
(commit 5a32dad) on this project's CI machine type, with torch's default thread count.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from napari_mscgm import list_models, load_model, restore
from napari_mscgm.samples import load_sample

CASES = json.loads((Path(__file__).parent / "data" / "reference_outputs.json").read_text())


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model']}-{c['kwargs']}")
def test_bundled_models_are_bitwise_unchanged(case):
    if case["model"] not in list_models():
        pytest.skip(f"{case['model']} is no longer bundled")
    image, _ = load_sample(case["sample"])
    result = restore(image, load_model(case["model"], device="cpu"), **case["kwargs"])
    arrays = list(result) if isinstance(result, tuple) else [result]
    assert [_digest(a) for a in arrays] == case["sha256"]
