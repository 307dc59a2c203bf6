import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_mscgm.cli import main
from napari_mscgm.io import read_image, read_run_metadata


@pytest.fixture
def ome_input(tmp_path, rng):
    path = tmp_path / "cells.ome.tif"
    data = (rng.random((2, 24, 20)) * 4000 + 100).astype(np.uint16)
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 0.65,
            "PhysicalSizeY": 0.65,
            "PhysicalSizeZ": 0.5,
        },
    )
    return path


def test_restore_end_to_end(tmp_path, ome_input, tiny_weights, capsys):
    before = ome_input.read_bytes()
    out = tmp_path / "result.ome.tif"
    rc = main(
        [
            "restore",
            str(ome_input),
            "-o",
            str(out),
            "--model",
            tiny_weights,
            "--steps",
            "3",
            "--seed",
            "7",
        ]
    )
    assert rc == 0
    result = read_image(out)
    assert result.data.shape == (1, 1, 2, 48, 40)
    assert result.data.dtype == np.float32
    z, y, x = result.pixel_size_um
    assert y == pytest.approx(0.325) and x == pytest.approx(0.325) and z == pytest.approx(0.5)
    meta = read_run_metadata(out)
    assert meta["steps"] == 3 and meta["seed"] == 7 and meta["model"] == "tiny"
    assert len(meta["model_sha256"]) == 64 and meta["input_name"] == "cells"
    assert meta["version"] and meta["normalization"]["values"]
    assert ome_input.read_bytes() == before  # input untouched
    assert not list(tmp_path.glob(".*.part"))


def test_same_seed_same_file_content(tmp_path, ome_input, tiny_weights):
    outs = []
    for name in ("a.ome.tif", "b.ome.tif"):
        out = tmp_path / name
        assert (
            main(
                ["restore", str(ome_input), "-o", str(out), "--model", tiny_weights, "--steps", "2"]
            )
            == 0
        )
        outs.append(tifffile.imread(out))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_samples_writes_std(tmp_path, ome_input, tiny_weights):
    out = tmp_path / "r.ome.tif"
    rc = main(
        [
            "restore",
            str(ome_input),
            "-o",
            str(out),
            "--model",
            tiny_weights,
            "--steps",
            "2",
            "--samples",
            "2",
        ]
    )
    assert rc == 0
    std = tmp_path / "r_std.ome.tif"
    assert std.exists() and read_run_metadata(std)["content"] == "std"
    assert tifffile.imread(std).min() >= 0


def test_several_inputs_to_directory(tmp_path, ome_input, tiny_weights):
    second = tmp_path / "other.tif"
    tifffile.imwrite(second, np.ones((16, 16), np.uint16))
    outdir = tmp_path / "out"
    assert (
        main(
            [
                "restore",
                str(ome_input),
                str(second),
                "-o",
                str(outdir),
                "--model",
                tiny_weights,
                "--steps",
                "1",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in outdir.iterdir()) == [
        "cells_mscgm.ome.tif",
        "other_mscgm.ome.tif",
    ]


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "napari_mscgm.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_missing_input_exit_2_one_line(tmp_path, tiny_weights):
    out = tmp_path / "x.ome.tif"
    proc = _run("restore", str(tmp_path / "missing.tif"), "-o", str(out), "--model", tiny_weights)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path, ome_input, tiny_weights):
    out = tmp_path / "x.ome.tif"
    out.write_bytes(b"keep me")
    assert main(["restore", str(ome_input), "-o", str(out), "--model", tiny_weights]) == 2
    assert out.read_bytes() == b"keep me"
    assert (
        main(
            [
                "restore",
                str(ome_input),
                "-o",
                str(out),
                "--model",
                tiny_weights,
                "--steps",
                "1",
                "--overwrite",
            ]
        )
        == 0
    )
    assert read_run_metadata(out)["steps"] == 1


def test_output_equal_to_input_refused(tmp_path, ome_input, tiny_weights):
    before = ome_input.read_bytes()
    assert (
        main(
            [
                "restore",
                str(ome_input),
                "-o",
                str(ome_input),
                "--model",
                tiny_weights,
                "--overwrite",
            ]
        )
        == 2
    )
    assert ome_input.read_bytes() == before


def test_pickle_model_refused(tmp_path, ome_input, capsys):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"\x80\x04junk")
    assert (
        main(["restore", str(ome_input), "-o", str(tmp_path / "o.tif"), "--model", str(weights)])
        == 2
    )
    assert "pickle" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_unreadable_input_exit_2(tmp_path, tiny_weights, capsys):
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    assert main(["restore", str(bad), "-o", str(tmp_path / "o.tif"), "--model", tiny_weights]) == 2
    err = capsys.readouterr().err
    assert "cannot be read as an image" in err and err.strip().count("\n") == 0


def test_help_and_models():
    proc = _run("--help")
    assert proc.returncode == 0 and "restore" in proc.stdout and "models" in proc.stdout
    proc = _run("restore", "--help")
    assert "--steps" in proc.stdout and "--seed" in proc.stdout and "--samples" in proc.stdout
    proc = _run("models")
    assert proc.returncode == 0


def test_bad_usage_exit_2():
    proc = _run("restore", "--steps", "x")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0


def test_zarr_output_with_tiles(tmp_path, ome_input, tiny_weights):
    out = tmp_path / "result.ome.zarr"
    args = ["restore", str(ome_input), "-o", str(out), "--model", tiny_weights, "--steps", "2"]
    assert main([*args, "--tile", "16", "--overlap", "4"]) == 0
    result = read_image(out)
    assert result.data.shape == (1, 1, 2, 48, 40)
    assert result.pixel_size_um == pytest.approx((0.5, 0.325, 0.325))
    meta = read_run_metadata(out)
    assert meta["tile_size"] == 16 and meta["overlap"] == 4 and meta["input_name"] == "cells"
    # Whole planes (--tile 0) equal the default --tile 256 for an image smaller than a tile.
    tif = tmp_path / "whole.ome.tif"
    assert (
        main(
            [
                "restore",
                str(ome_input),
                "-o",
                str(tif),
                "--model",
                tiny_weights,
                "--steps",
                "2",
                "--tile",
                "0",
            ]
        )
        == 0
    )
    default = tmp_path / "default.ome.tif"
    assert (
        main(
            ["restore", str(ome_input), "-o", str(default), "--model", tiny_weights, "--steps", "2"]
        )
        == 0
    )
    np.testing.assert_array_equal(tifffile.imread(tif), tifffile.imread(default))
    assert read_run_metadata(tif)["tile_size"] is None
    assert not list(tmp_path.glob(".*part"))


def test_bad_tile_and_scheduler_exit_2(tmp_path, ome_input, tiny_weights, capsys, monkeypatch):
    from napari_mscgm.cli import restore as cli_restore

    monkeypatch.setattr(cli_restore, "CONNECT_TIMEOUT", "2s")
    out = tmp_path / "o.zarr"
    base = ["restore", str(ome_input), "-o", str(out), "--model", tiny_weights]
    assert main([*base, "--tile", "64", "--overlap", "40"]) == 2
    assert "half" in capsys.readouterr().err
    assert main([*base, "--scheduler", "tcp://127.0.0.1:9", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err and err.strip().count("\n") == 0
    assert not out.exists()


def test_channels_from_the_reader_are_independent(tmp_path, tiny_weights, rng):
    # A 2-channel CZYX OME-TIFF: the reader gives the axes; each channel is restored on its own.
    from napari_mscgm import load_model, restore

    data = (rng.random((2, 1, 24, 32)) * 3000 + 100).astype(np.uint16)
    data[1] //= 20  # a dimmer channel, normalised with its own percentiles
    src = tmp_path / "two.ome.tif"
    tifffile.imwrite(
        src,
        data,
        ome=True,
        metadata={"axes": "CZYX", "PhysicalSizeX": 0.65, "Channel": {"Name": ["GFP", "RFP"]}},
    )
    out = tmp_path / "two.zarr"
    args = ["--model", tiny_weights, "--steps", "2", "--seed", "3", "--tile", "16"]
    assert main(["restore", str(src), "-o", str(out), *args, "--overlap", "4"]) == 0
    result = read_image(out)
    assert result.data.shape == (1, 2, 1, 48, 64)
    assert result.channel_names == ["GFP", "RFP"]
    model = load_model(tiny_weights, device="cpu")
    kw = {"steps": 2, "seed": 3, "tile_size": 16, "overlap": 4}
    both = restore(data, model, axes="CZYX", **kw)
    np.testing.assert_array_equal(np.asarray(result.data[0]), both)
    # Channel 0 alone (same plane index c=0) is bitwise the same: channels do not interact.
    np.testing.assert_array_equal(both[0], restore(data[:1], model, axes="CZYX", **kw)[0])
    assert read_run_metadata(out)["precision"] == "float32"


def test_precision_option(tmp_path, ome_input, tiny_weights):
    out = tmp_path / "bf.zarr"
    args = ["--model", tiny_weights, "--steps", "1", "--precision", "bfloat16"]
    assert main(["restore", str(ome_input), "-o", str(out), *args]) == 0
    # Recorded as asked; autocast applies on CUDA only, so on the CPU the pixels are float32's.
    assert read_run_metadata(out)["precision"] == "bfloat16"
    ref = tmp_path / "f32.zarr"
    assert main(["restore", str(ome_input), "-o", str(ref), *args[:4]]) == 0
    np.testing.assert_array_equal(
        np.asarray(read_image(out).data), np.asarray(read_image(ref).data)
    )
    with pytest.raises(SystemExit) as exc:
        main(["restore", str(ome_input), "-o", str(out), *args[:4], "--precision", "x"])
    assert exc.value.code == 2


def test_benchmark_command(tmp_path, capsys):
    # `napari-mscgm benchmark` runs benchmarks/ of this checkout; bad names are usage errors.
    assert main(["benchmark", "nonsense"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    proc = _run("benchmark", "--help")
    assert proc.returncode == 0 and "--planes" in proc.stdout and "--threads" in proc.stdout


def test_benchmarks_measure_what_they_report(tmp_path):
    # Tiny sizes: the numbers are meaningless, but every column is really measured.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's benchmarks/
    from benchmarks import bench_memory, bench_speedup

    rows = bench_speedup.run(size=64, steps=2)
    assert [r["levels"] for r in rows] == [2, 3]
    for r in rows:
        assert r["mscgm_s"] > 0 and r["full_bbdp_s"] > 0 and r["speedup"] > 0
    rows = bench_memory.run([1, 3], tmp_path / "work", tile=64, plane=128, threads=1)
    assert [r["planes"] for r in rows] == ["1 x 128x128", "3 x 128x128"]
    for r in rows:
        assert 0 < r["rss_before_mb"] <= r["peak_rss_mb"] < 3000
        assert r["peak_second_half_mb"] <= r["peak_rss_mb"] + 1
        assert r["input_gb"] > 0 and r["output_gb"] > 0 and r["wall_s"] > 0
    assert list((tmp_path / "work").iterdir()) == []  # the stacks are deleted
