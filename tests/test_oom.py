"""Out of device memory: halve the batch, then the tile, tell the user, and still finish."""

import numpy as np
import pytest
import torch

from napari_mscgm import OutputError, restore


def _inject_oom(monkeypatch, model, too_big):
    """Make ``model.sample`` raise CUDA-style OOM when ``too_big(batch)`` is true."""
    real = model.sample
    calls = []

    def sample(degraded, **kwargs):
        calls.append(tuple(degraded.shape))
        if too_big(degraded):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(degraded, **kwargs)

    monkeypatch.setattr(model, "sample", sample)
    return calls


def test_batch_is_halved_and_retried(monkeypatch, tiny_model, rng):
    image = rng.random((16, 160)).astype(np.float32)  # one row of ten 16-px tiles
    kw = {"steps": 2, "tile_size": 16, "overlap": 0}
    reference = restore(image, tiny_model, batch_size=1, **kw)
    calls = _inject_oom(monkeypatch, tiny_model, lambda x: x.shape[0] > 4)
    with pytest.warns(ResourceWarning, match="8 tiles per forward pass; retrying with 4"):
        out = restore(image, tiny_model, batch_size=8, **kw)
    # After the first OOM the smaller batch is kept for the rest of the run.
    assert [c[0] for c in calls] == [8, 4, 4, 2]
    np.testing.assert_allclose(out, reference, atol=1e-4 * float(np.abs(reference).max()))


def test_tile_is_halved_when_one_tile_does_not_fit(monkeypatch, tiny_model, rng):
    image = rng.random((64, 64)).astype(np.float32)
    calls = _inject_oom(monkeypatch, tiny_model, lambda x: x.shape[-1] > 80)
    with pytest.warns(ResourceWarning, match="tile_size=32"):
        out, meta = restore(
            image, tiny_model, steps=1, tile_size=64, overlap=8, batch_size=1, return_metadata=True
        )
    assert out.shape == (128, 128) and np.isfinite(out).all()
    assert meta["tile_size"] == 32 and calls


def test_gives_up_with_a_clear_error(monkeypatch, tiny_model, rng):
    _inject_oom(monkeypatch, tiny_model, lambda x: True)
    with pytest.warns(ResourceWarning), pytest.raises(OutputError, match="out of cpu memory"):
        restore(rng.random((64, 64)), tiny_model, steps=1, tile_size=64, overlap=8)


def test_other_errors_are_not_retried(monkeypatch, tiny_model, rng):
    def broken(degraded, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(tiny_model, "sample", broken)
    with pytest.raises(RuntimeError, match="boom"):
        restore(rng.random((32, 32)), tiny_model, steps=1)


def test_mps_style_runtime_error_is_an_oom(monkeypatch, tiny_model, rng):
    # MPS (and ROCm) report running out of memory as a plain RuntimeError.
    image = rng.random((16, 64)).astype(np.float32)  # four 16-px tiles
    kw = {"steps": 1, "tile_size": 16, "overlap": 0}
    reference = restore(image, tiny_model, batch_size=1, **kw)
    real = tiny_model.sample
    sizes = []

    def sample(degraded, **kwargs):
        sizes.append(degraded.shape[0])
        if degraded.shape[0] > 2:
            raise RuntimeError("MPS backend out of memory (MPS allocated: 9.00 GB)")
        return real(degraded, **kwargs)

    monkeypatch.setattr(tiny_model, "sample", sample)
    with pytest.warns(ResourceWarning, match="4 tiles per forward pass; retrying with 2"):
        out = restore(image, tiny_model, batch_size=4, **kw)
    assert sizes == [4, 2, 2]
    np.testing.assert_allclose(out, reference, atol=1e-4 * float(np.abs(reference).max()))


def test_lazy_result_reports_a_tile_too_big(monkeypatch, tiny_model, rng):
    # A lazy result cannot restart with smaller tiles when computed later: it says what to do.
    import dask.array as da

    from napari_mscgm.restoration.batching import TileOOMError

    _inject_oom(monkeypatch, tiny_model, lambda x: True)
    lazy = restore(da.from_array(rng.random((64, 64))), tiny_model, steps=1, tile_size=64)
    with pytest.raises(TileOOMError, match=r"one 128×128 tile per forward pass.*smaller tile_size"):
        lazy.compute()
