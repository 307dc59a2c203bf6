"""The same graph on a dask.distributed LocalCluster (2 worker processes on loopback)."""

import numpy as np
import pytest
import zarr

from napari_mscgm import restore

distributed = pytest.importorskip("distributed")

KW = {"steps": 2, "seed": 9, "tile_size": 32, "overlap": 8}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_cluster_result_identical_to_local(client, tiny_model, rng, tmp_path):
    image = (rng.random((3, 40, 72)) * 1000).astype(np.uint16)
    local = restore(image, tiny_model, axes="ZYX", **KW)
    remote = restore(image, tiny_model, axes="ZYX", client=client, **KW)
    np.testing.assert_array_equal(remote, local)
    # Workers stream their chunks straight into the OME-Zarr.
    source = zarr.open_array(
        str(tmp_path / "in.zarr"), mode="w", shape=image.shape, chunks=(1, 20, 36), dtype="u2"
    )
    source[...] = image
    out = restore(source, tiny_model, axes="ZYX", client=client, out=tmp_path / "o.zarr", **KW)
    np.testing.assert_array_equal(np.asarray(zarr.open_group(str(out), mode="r")["0"]), local)
    # The model was built at most once per worker, and reused across both runs.
    caches = client.run(lambda: len(__import__("napari_mscgm.tiling").tiling._MODEL_CACHE))
    assert set(caches.values()) <= {0, 1} and sum(caches.values()) >= 1
