"""The same graph on a dask.distributed LocalCluster (2 worker processes on loopback)."""

import numpy as np
import pytest
import zarr

from napari_mscgm import restore

distributed = pytest.importorskip("distributed")

# One CPU thread on both sides, as the workers have: oneDNN may round some convolutions
# differently with another thread count (see docs/architecture.md, "Seeds").
KW = {"steps": 2, "seed": 9, "tile_size": 32, "overlap": 8, "threads": 1}


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
    caches = client.run(
        lambda: len(__import__("napari_mscgm.restoration.distributed", fromlist=["_"])._MODEL_CACHE)
    )
    assert set(caches.values()) <= {0, 1} and sum(caches.values()) >= 1


def test_cli_scheduler_identical_to_local(client, tiny_weights, rng, tmp_path):
    import tifffile

    from napari_mscgm import load_model
    from napari_mscgm.cli import main
    from napari_mscgm.io import read_image, read_run_metadata

    data = (rng.random((2, 40, 48)) * 3000 + 100).astype(np.uint16)
    src = tmp_path / "stack.ome.tif"
    tifffile.imwrite(src, data, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.65})
    args = [
        "--model",
        tiny_weights,
        "--steps",
        "2",
        "--seed",
        "5",
        "--tile",
        "32",
        "--overlap",
        "8",
        "--threads",
        "1",
    ]
    out = tmp_path / "remote.zarr"
    address = client.scheduler.address
    assert main(["restore", str(src), "-o", str(out), "--scheduler", address, *args]) == 0
    local = restore(
        data,
        load_model(tiny_weights, device="cpu"),
        axes="ZYX",
        steps=2,
        seed=5,
        tile_size=32,
        overlap=8,
        threads=1,
    )
    np.testing.assert_array_equal(np.asarray(read_image(out).data[0, 0]), local)
    assert read_run_metadata(out)["input_name"] == "stack"
