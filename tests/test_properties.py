"""Property-based tests: the wavelets, restore and the weights-metadata parser over
generated shapes, axes, tilings, dtypes and arbitrary JSON."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from napari_mscgm import InputError, ModelConfig, WeightsError, restore
from napari_mscgm.core.wavelets import haar_dwt2, haar_idwt2, pad_to_multiple
from napari_mscgm.model_io.weights import parse_model_metadata, read_model_config

# Modest budgets: the file runs in well under a minute on one core.
MANY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ================================================================ wavelets
@MANY
@given(
    height=st.integers(1, 48),
    width=st.integers(1, 48),
    levels=st.integers(0, 4),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    batch=st.integers(1, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_wavelet_round_trip(height, width, levels, dtype, batch, seed):
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, 2, height, width)))
    x = x.to(dtype)
    padded, size = pad_to_multiple(x, 2**levels)
    assert size == (height, width)
    assert padded.shape[-2] % 2**levels == 0 and padded.shape[-1] % 2**levels == 0
    assert torch.equal(padded[..., :height, :width], x)  # padding only bottom/right
    ll, details = haar_dwt2(padded, levels)
    assert len(details) == levels
    assert ll.shape[-2:] == (padded.shape[-2] >> levels, padded.shape[-1] >> levels)
    back = haar_idwt2(ll, details)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(back, padded, atol=tol * (1 + float(x.abs().max())))
    # Orthonormal: the energy of the coefficients equals the padded image's.
    energy = ll.double().square().sum() + sum(d.double().square().sum() for d in details)
    assert torch.isclose(energy, padded.double().square().sum(), rtol=1e-4)


# ================================================================ restore
@st.composite
def restore_cases(draw):
    """An image with a random axes order, spatial size, pixel type and tiling."""
    extra = draw(st.lists(st.sampled_from("TCZ"), unique=True, max_size=2))
    letters = [*extra, "Y", "X"]
    order = draw(st.permutations(letters))
    sizes = {a: draw(st.integers(1, 2)) for a in extra}
    sizes["Y"] = draw(st.integers(1, 40))
    sizes["X"] = draw(st.integers(1, 40))
    dtype = draw(st.sampled_from(["uint8", "uint16", "int16", "float16", "float32", "float64"]))
    tile = draw(st.one_of(st.none(), st.integers(16, 48)))
    overlap = 0 if tile is None else draw(st.integers(0, tile // 2))
    seed = draw(st.integers(0, 2**32 - 1))
    return "".join(order), tuple(sizes[a] for a in order), dtype, tile, overlap, seed


@FEW
@given(case=restore_cases())
def test_restore_shape_dtype_and_finiteness(tiny_model, case):
    axes, shape, dtype, tile, overlap, seed = case
    rng = np.random.default_rng(seed)
    scale = 100 if np.dtype(dtype).kind in "ui" else 1
    image = (rng.random(shape) * scale).astype(dtype)
    before = image.copy()
    out = restore(image, tiny_model, axes=axes, steps=1, seed=seed, tile_size=tile, overlap=overlap)
    expected = tuple(n * 2 if a in "YX" else n for a, n in zip(axes, shape, strict=True))
    assert out.shape == expected and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(image, before)


@FEW
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
    axes=st.text(alphabet="TCZYXQ", min_size=0, max_size=4),
)
def test_any_axes_string_is_processed_or_refused_cleanly(tiny_model, shape, axes):
    image = np.ones(shape, np.float32)
    try:
        out = restore(image, tiny_model, axes=axes, steps=1)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert out.ndim == 3 and out.dtype == np.float32 and np.isfinite(out).all()


# ================================================================ weights metadata
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_VALID = json.loads(tiny_config().model_dump_json())


def _paths(document: dict) -> list[tuple]:
    """Every key path of a nested JSON object."""
    out = []
    for key, value in document.items():
        out.append((key,))
        if isinstance(value, dict):
            out += [(key, *rest) for rest in _paths(value)]
    return out


@st.composite
def mutated_configs(draw):
    """A valid config with one field replaced by arbitrary JSON, or removed."""
    document = json.loads(json.dumps(_VALID))
    path = draw(st.sampled_from(_paths(document)))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[path[-1]] = draw(json_values)
    else:
        del parent[path[-1]]
    return document


def _parse(text: str):
    """Only a ModelConfig or a one-line WeightsError may come out."""
    try:
        return parse_model_metadata(text, source="w.safetensors")
    except WeightsError as exc:
        assert str(exc).startswith("w.safetensors: ") and "\n" not in str(exc)
        return None


@MANY
@given(document=json_values)
def test_parser_on_arbitrary_json(document):
    result = _parse(json.dumps(document))
    assert result is None or isinstance(result, ModelConfig)


@MANY
@given(document=mutated_configs())
def test_parser_on_nearly_valid_configs(document):
    result = _parse(json.dumps(document))
    if result is not None:  # whatever passes validation can be built
        assert result.levels == len(result.networks.generators)


@MANY
@given(text=st.text(max_size=60))
def test_parser_on_arbitrary_text(text):
    assert _parse(text) is None or text.strip().startswith("{")


@settings(max_examples=30, deadline=None)
@given(document=st.one_of(json_values, mutated_configs()))
def test_read_model_config_from_files(document):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "w.safetensors"
        save_file({"x": torch.zeros(1)}, str(path), metadata={"mscgm": json.dumps(document)})
        try:
            config = read_model_config(path)
        except WeightsError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
        else:
            assert isinstance(config, ModelConfig)


def test_parser_accepts_the_valid_config():
    assert parse_model_metadata(json.dumps(_VALID)) == tiny_config()


@pytest.mark.parametrize("text", ["[" * 50_000, '{"a": ' * 50_000, "NaN", '{"scale": NaN}'])
def test_parser_on_pathological_text(text):
    assert _parse(text) is None
