"""Reliability of ``napari-mscgm restore``: every bad input and every file failure is deliberate.

Each input is either restored correctly (exit 0, a float32 result of the right shape)
or refused with exit code 2 and one line on stderr, without a traceback and without
leaving any output file; the input file is never modified. Outputs are written
atomically: a full disk, a forbidden directory, SIGINT or SIGTERM leave nothing
under the final name and no temporary file.

Everything runs the tiny untrained model from ``conftest`` with one diffusion step
on small images, in process (``main([...])``), except the signal tests, which need
a real process to signal.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_mscgm.cli import main
from napari_mscgm.io import read_image, write_ome_tiff

FAST = ["--steps", "1"]


# --------------------------------------------------------------------- helpers
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder: Path) -> set[str]:
    """Every path under ``folder`` (hidden ones included), relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _leftovers(folder: Path) -> list[str]:
    """Temporary outputs (``*.part``, files or directories) anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if ".part" in p.name)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the command in process: (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _assert_refused(rc: int, err: str, *needles: str) -> str:
    """Exit 2 with exactly one ``napari-mscgm: error:`` line that mentions ``needles``."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("napari-mscgm: error: "), line
    for needle in needles:
        assert needle.lower() in line.lower(), (needle, line)
    return line


def _stack(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Positive bead-like intensities of any shape (float64)."""
    rng = np.random.default_rng(seed)
    return rng.random(shape) * 900 + 100


# --------------------------------------------------------------------- 1. input matrix
# Inputs that must be restored: name -> pixels written with tifffile (plain TIFF).
PROCESSED = {
    "bool": _stack((24, 20)) > 500,
    "uint8": (_stack((24, 20)) / 4).astype(np.uint8),
    "uint16": _stack((24, 20)).astype(np.uint16),
    "int16": (_stack((24, 20)) - 500).astype(np.int16),  # negative values too
    "int32": (_stack((24, 20)) * 1000).astype(np.int32),
    "float16": _stack((24, 20)).astype(np.float16),
    "float32": _stack((24, 20)).astype(np.float32),
    "float64": _stack((24, 20)),
    "constant": np.full((24, 20), 321.5, np.float32),
    "all-zero": np.zeros((24, 20), np.uint16),
    "1x1": np.full((1, 1), 7.0, np.float32),
    "7x5": _stack((7, 5)).astype(np.float32),
    "prime-31x37": _stack((31, 37)).astype(np.float32),
    "prime-stack-3x17x13": _stack((3, 17, 13)).astype(np.uint16),
    "1x1000": _stack((1, 1000)).astype(np.float32),
    "1000x1": _stack((1000, 1)).astype(np.float32),
    "2x777": _stack((2, 777)).astype(np.float32),
}


@pytest.mark.parametrize("case", list(PROCESSED), ids=list(PROCESSED))
def test_input_matrix_processed(tmp_path, tiny_weights, capsys, case):
    pixels = PROCESSED[case]
    src = tmp_path / f"{case}.tif"
    tifffile.imwrite(src, pixels)
    before = _sha(src)
    out = tmp_path / "out.ome.tif"
    rc, stdout, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)
    assert rc == 0, err
    assert "Traceback" not in err and "error" not in err
    assert f"-> {out}" in stdout
    result = read_image(out).data
    t, c, z, height, width = read_image(src).data.shape  # as the reader sees the file
    assert result.shape == (t, c, z, 2 * height, 2 * width)
    assert result.dtype == np.float32
    values = np.asarray(result)
    assert np.isfinite(values).all()
    if case in ("constant", "all-zero"):
        # No contrast to normalise by (a unit span is used): the output stays at the
        # constant, in input units, give or take the model's generated detail.
        assert abs(float(np.median(values)) - float(pixels.flat[0])) < 1.0
    assert _sha(src) == before
    assert _listing(tmp_path) == {src.name, out.name}  # no temporary files


def _tiff(path: Path, data: np.ndarray, **kwargs) -> Path:
    tifffile.imwrite(path, data, **kwargs)
    return path


def _ome(path: Path, data: np.ndarray, axes: str) -> Path:
    """An OME-TIFF with the tiny model's pixel size (so no pixel-size warning)."""
    write_ome_tiff(path, data, axes=axes, pixel_size_um=(1.0, 0.65, 0.65))
    return path


def _nan_late(path: Path) -> Path:
    # Finite first planes, a NaN in the last one: the run fails after it has started
    # writing, and must still leave nothing behind.
    data = _stack((3, 24, 20)).astype(np.float32)
    data[2, 5, 5] = np.nan
    return _ome(path, data, "ZYX")


def _with(value: float):
    def make(path: Path) -> Path:
        data = _stack((24, 20)).astype(np.float32)
        data[3, 4] = value
        return _tiff(path, data)

    return make


def _truncated(path: Path) -> Path:
    _tiff(path, _stack((64, 64)).astype(np.uint16))
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])  # header kept, pixel data cut
    return path


def _wrong_ome_axes(path: Path) -> Path:
    # OME metadata that does not fit the pixels: it claims a 3-plane Z stack.
    write_ome_tiff(path, _stack((24, 20)).astype(np.float32), axes="YX")
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    bad = xml.replace('SizeZ="1"', 'SizeZ="3"')
    assert bad != xml
    tifffile.tiffcomment(path, bad.encode())
    return path


def _text(path: Path) -> Path:
    path.write_text("this is not an image\n")
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    (path / "inside.txt").write_text("x")
    return path


# Inputs that must be refused: name -> (file maker, words the message must contain).
REFUSED = {
    "complex64": (lambda p: _tiff(p, _stack((24, 20)).astype(np.complex64)), ["complex"]),
    "complex128": (lambda p: _tiff(p, _stack((24, 20)).astype(np.complex128)), ["complex"]),
    "nan": (_with(np.nan), ["NaN"]),
    "inf": (_with(np.inf), ["Inf"]),
    "minus-inf": (_with(-np.inf), ["Inf"]),
    "nan-in-last-plane": (_nan_late, ["NaN"]),
    "6d": (lambda p: _tiff(p, _stack((2, 2, 2, 2, 8, 8)).astype(np.float32)), ["at most 5"]),
    "ome-axes-do-not-fit": (_wrong_ome_axes, ["OME metadata"]),
    "not-an-image": (_text, ["cannot be read"]),
    "empty-file": (_empty, ["cannot be read"]),
    "truncated-tiff": (_truncated, []),
    "directory": (_folder, ["directory"]),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_input_matrix_refused(tmp_path, tiny_weights, capsys, case):
    make, needles = REFUSED[case]
    src = make(tmp_path / f"{case}.tif")
    before = None if src.is_dir() else _sha(src)
    listing = _listing(tmp_path)
    out = tmp_path / "out.ome.tif"
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)
    line = _assert_refused(rc, err, *needles)
    assert src.name in line  # the message says which file
    assert _listing(tmp_path) == listing  # no output, no temporary file
    if before is not None:
        assert _sha(src) == before


def test_refused_inputs_in_a_real_process_print_one_line(tmp_path, tiny_weights):
    # In a real process, library log records and warnings reach stderr too (pytest
    # captures them in process): run the whole refused matrix in one child process,
    # each case with its own stderr, as a user would see it.
    cases = {}
    for case, (make, _) in REFUSED.items():
        folder = tmp_path / case
        folder.mkdir()
        cases[case] = str(make(folder / f"{case}.tif"))
    script = (
        "import contextlib, io, json, sys\n"
        "from napari_mscgm.cli import main\n"
        "cases, weights = json.loads(sys.argv[1]), sys.argv[2]\n"
        "results = {}\n"
        "for case, src in cases.items():\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):\n"
        "        rc = main(['restore', src, '-o', src + '.out.ome.tif', '--model', weights,\n"
        "                   '--steps', '1'])\n"
        "    results[case] = [rc, err.getvalue()]\n"
        "print(json.dumps(results))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(cases), tiny_weights],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    wrong = {
        case: (rc, err)
        for case, (rc, err) in results.items()
        if rc != 2 or len(err.strip().splitlines()) != 1 or "Traceback" in err
    }
    assert not wrong, wrong
    for case, src in cases.items():
        assert sorted(p.name for p in Path(src).parent.iterdir()) == [Path(src).name], case


@pytest.mark.parametrize("samples", [3, 4], ids=["rgb", "rgba"])
def test_rgb_tiff_colours_are_restored_as_channels(tmp_path, tiny_weights, capsys, samples):
    # A TIFF with 3 or 4 samples per pixel: the reader gives the colours as channels,
    # each restored (and normalised) on its own; none is silently dropped.
    pixels = np.random.default_rng(0).integers(0, 255, (24, 20, samples), dtype=np.uint8)
    pixels[..., 0] = 0  # an empty red channel must not hide the others
    extra = {"extrasamples": ["unassalpha"]} if samples == 4 else {}
    src = _tiff(tmp_path / "colour.tif", pixels, photometric="rgb", **extra)
    before = _sha(src)
    out = tmp_path / "out.ome.tif"
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)
    assert rc == 0, err
    result = read_image(out)
    assert result.data.shape == (1, samples, 1, 48, 40)
    assert result.data.dtype == np.float32
    assert result.channel_names == list("RGBA")[:samples]
    values = np.asarray(result.data)
    assert np.isfinite(values).all()
    for ch in range(1, samples):  # each colour keeps its own intensities
        assert abs(values[0, ch].mean() - pixels[..., ch].mean()) < 0.2 * pixels[..., ch].mean()
    assert _sha(src) == before and not _leftovers(tmp_path)


def test_pixel_size_warning_only_once_a_run_has_started(tmp_path, tiny_weights, capsys):
    # A plain TIFF records no pixel size: readers say 1 µm, far from the model's 0.65.
    plain = _tiff(tmp_path / "plain.tif", _stack((24, 20)).astype(np.float32))
    rc, _, err = _cli(capsys, "restore", plain, "-o", tmp_path / "o.tif", "--model", tiny_weights)
    assert rc == 0
    [line] = err.strip().splitlines()
    assert line.startswith("napari-mscgm: warning: plain.tif has 1 µm pixels")
    assert "records no pixel size" in line and "0.65" in line
    # A refused input gets its error line only, not the warning too.
    bad = _tiff(tmp_path / "bad.tif", _stack((24, 20)).astype(np.complex64))
    rc, _, err = _cli(capsys, "restore", bad, "-o", tmp_path / "p.tif", "--model", tiny_weights)
    _assert_refused(rc, err, "complex")
    # A file with the model's pixel size: no warning at all.
    good = _ome(tmp_path / "good.ome.tif", _stack((24, 20)).astype(np.float32), "YX")
    rc, _, err = _cli(capsys, "restore", good, "-o", tmp_path / "q.tif", "--model", tiny_weights)
    assert rc == 0 and err == ""


def test_refused_input_among_several_names_it_and_leaves_nothing(tmp_path, tiny_weights, capsys):
    good = _tiff(tmp_path / "good.tif", _stack((24, 20)).astype(np.float32))
    bad = _with(np.nan)(tmp_path / "bad.tif")
    out_dir = tmp_path / "results"  # created by the run
    rc, _, err = _cli(capsys, "restore", bad, good, "-o", out_dir, "--model", tiny_weights, *FAST)
    _assert_refused(rc, err, "bad.tif", "NaN")
    assert not out_dir.exists()  # the directory it created is gone again
    unreadable = _text(tmp_path / "notes.tif")
    rc, _, err = _cli(
        capsys, "restore", good, unreadable, "-o", out_dir, "--model", tiny_weights, *FAST
    )
    # Every input is opened before any work: nothing was restored, not even good.tif.
    _assert_refused(rc, err, "notes.tif")
    assert not out_dir.exists()


# --------------------------------------------------------------------- 2. files
@pytest.fixture
def src(tmp_path) -> Path:
    return _ome(tmp_path / "cells.ome.tif", _stack((24, 20)).astype(np.uint16), "YX")


@pytest.mark.parametrize("spelling", ["same", "dot-dot", "symlink", "hardlink", "relative"])
def test_output_equal_to_input_refused(tmp_path, tiny_weights, capsys, src, spelling, monkeypatch):
    before = _sha(src)
    if spelling == "same":
        out = src
    elif spelling == "dot-dot":
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / ".." / src.name
    elif spelling == "symlink":
        out = tmp_path / "link.ome.tif"
        out.symlink_to(src)
    elif spelling == "hardlink":
        out = tmp_path / "hard.ome.tif"
        os.link(src, out)
    else:
        monkeypatch.chdir(tmp_path)
        out = Path(src.name)
    for extra in ([], ["--overwrite"]):
        rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *extra)
        _assert_refused(rc, err, "overwrite an input")
        assert _sha(src) == before
    assert not _leftovers(tmp_path)


def test_std_output_equal_to_input_refused(tmp_path, tiny_weights, capsys):
    # With --samples 2 the uncertainty map goes to <output>_std: that must not be an input.
    src = _tiff(tmp_path / "x_std.ome.tif", _stack((24, 20)).astype(np.uint16))
    before = _sha(src)
    out = tmp_path / "x.ome.tif"
    for extra in ([], ["--overwrite"]):
        rc, _, err = _cli(
            capsys, "restore", src, "-o", out, "--model", tiny_weights, "--samples", "2", *extra
        )
        _assert_refused(rc, err, "x_std.ome.tif", "overwrite an input")
        assert _sha(src) == before and not out.exists()


def test_existing_output_needs_overwrite_and_a_failed_overwrite_keeps_it(
    tmp_path, tiny_weights, capsys, src
):
    out = tmp_path / "out.ome.tif"
    assert _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)[0] == 0
    first = _sha(out)
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)
    _assert_refused(rc, err, str(out), "--overwrite")
    assert _sha(out) == first
    # A run that fails half-way with --overwrite leaves the previous result intact.
    bad = _nan_late(tmp_path / "bad.tif")
    rc, _, err = _cli(capsys, "restore", bad, "-o", out, "--model", tiny_weights, "--overwrite")
    _assert_refused(rc, err, "NaN")
    assert _sha(out) == first
    assert not _leftovers(tmp_path)
    # And a good one replaces it.
    rc, _, err = _cli(
        capsys, "restore", src, "-o", out, "--model", tiny_weights, "--overwrite", "--seed", "5"
    )
    assert rc == 0 and _sha(out) != first


def test_existing_zarr_output_needs_overwrite(tmp_path, tiny_weights, capsys, src):
    out = tmp_path / "out.ome.zarr"
    assert _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)[0] == 0
    listing = _listing(out)
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)
    # Not taken for an output directory to write <stem>_mscgm.ome.tif into.
    _assert_refused(rc, err, str(out), "--overwrite")
    assert _listing(out) == listing
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, "--overwrite")
    assert rc == 0, err
    assert read_image(out).data.shape == (1, 1, 1, 48, 40)
    assert not _leftovers(tmp_path)


def test_missing_output_directory(tmp_path, tiny_weights, capsys, src):
    out = tmp_path / "no" / "such" / "dir" / "out.ome.tif"
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights)
    _assert_refused(rc, err, str(out.parent), "does not exist")
    assert not (tmp_path / "no").exists()
    # Several inputs into a directory whose parent is missing.
    rc, _, err = _cli(capsys, "restore", src, src, "-o", out.parent, "--model", tiny_weights)
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


def test_output_below_a_file(tmp_path, tiny_weights, capsys, src):
    out = src.parent / "plain.txt" / "out.ome.tif"
    (src.parent / "plain.txt").write_text("x")
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights)
    _assert_refused(rc, err, "plain.txt", "not a directory")


def test_read_only_output_directory(tmp_path, tiny_weights, capsys, src):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        try:
            (folder / "probe").touch()
        except PermissionError:
            pass
        else:
            pytest.skip("this user writes to read-only directories (root)")
        out = folder / "o.ome.tif"
        rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights)
        _assert_refused(rc, err, str(folder), "not writable")
        assert not list(folder.iterdir())
    finally:
        folder.chmod(0o755)


def test_read_only_filesystem_refused_before_any_work(
    tmp_path, tiny_weights, capsys, src, monkeypatch
):
    # A read-only mount makes access(W_OK) fail even for root: simulate that answer.
    folder = tmp_path / "mount"
    folder.mkdir()
    real_access = os.access

    def access(path, mode, **kwargs):
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    started = []
    monkeypatch.setattr("napari_mscgm.restoration.pipeline._run", lambda *a, **k: started.append(1))
    rc, _, err = _cli(capsys, "restore", src, "-o", folder / "o.ome.tif", "--model", tiny_weights)
    _assert_refused(rc, err, str(folder), "not writable")
    assert not started and not list(folder.iterdir())


def _failing_store_writes(monkeypatch, error: int, after: int = 2) -> list[str]:
    """Make Zarr chunk writes fail with ``error`` after ``after`` chunks (a disk filling up)."""
    zarr_storage = pytest.importorskip("zarr.storage")
    store = getattr(zarr_storage, "LocalStore", None)
    if store is None:
        pytest.skip("zarr without LocalStore (zarr 2)")
    real_set = store.set
    written: list[str] = []

    async def set_(self, key, value):
        if key.split("/")[0] == "0" and not key.endswith((".zarray", ".zattrs", "zarr.json")):
            if len(written) >= after:
                raise OSError(error, os.strerror(error), str(Path(str(self.root)) / key))
            written.append(key)
        await real_set(self, key, value)

    monkeypatch.setattr(store, "set", set_)
    return written


@pytest.mark.parametrize("suffix", [".ome.tif", ".ome.zarr"])
@pytest.mark.parametrize(
    "error",
    [errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS],
    ids=["ENOSPC", "EDQUOT", "EACCES", "EROFS"],
)
def test_disk_fills_up_while_writing(tmp_path, tiny_weights, capsys, monkeypatch, suffix, error):
    src = _ome(tmp_path / "big.ome.tif", _stack((2, 64, 64)).astype(np.uint16), "ZYX")
    written = _failing_store_writes(monkeypatch, error)
    out = tmp_path / f"out{suffix}"
    rc, _, err = _cli(
        capsys, "restore", src, "-o", out, "--model", tiny_weights, "--tile", "16", "--overlap", "4",
        *FAST,
    )  # fmt: skip
    line = _assert_refused(rc, err, str(out), os.strerror(error))
    assert ".part" not in line  # the user's path, not the temporary one
    assert written  # it failed mid-write, not before
    assert not out.exists() and not _leftovers(tmp_path)


def test_disk_full_on_the_final_tiff(tmp_path, tiny_weights, capsys, monkeypatch, src):
    # The OME-TIFF is written last, from the finished Zarr: fill the disk half-way through it.
    real_imwrite = tifffile.imwrite

    def imwrite(path, *args, **kwargs):
        Path(path).write_bytes(b"II*\x00partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tifffile, "imwrite", imwrite)
    out = tmp_path / "out.ome.tif"
    rc, _, err = _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)
    _assert_refused(rc, err, str(out), "No space left")
    assert not out.exists() and not _leftovers(tmp_path)
    monkeypatch.setattr(tifffile, "imwrite", real_imwrite)
    assert _cli(capsys, "restore", src, "-o", out, "--model", tiny_weights, *FAST)[0] == 0


def test_unexpected_failure_is_exit_1_with_traceback_and_no_file(tmp_path, tiny_weights, src):
    # A bug is not the user's fault: exit 1 with the traceback to report, still no file.
    out = tmp_path / "out.ome.tif"
    script = (
        "import sys, napari_mscgm.restoration.graph as g\n"
        "def broken(*a, **k): raise RuntimeError('a bug')\n"
        "g._restore_group = broken\n"
        "from napari_mscgm.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "restore", str(src), "-o", str(out), "--model", tiny_weights],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "RuntimeError: a bug" in proc.stderr
    assert not out.exists() and not _leftovers(tmp_path)


# --------------------------------------------------------------------- signals
@pytest.mark.parametrize("suffix", [".ome.tif", ".ome.zarr"])
@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_mid_run_leaves_nothing(tmp_path, tiny_weights, suffix, sig, code, word):
    src = _tiff(tmp_path / "big.tif", _stack((2, 128, 128)).astype(np.uint16))
    before = _sha(src)
    out = tmp_path / f"out{suffix}"
    marker = tmp_path.parent / f"{tmp_path.name}.started"
    # The signal lands inside the computation by construction, not by timing: after its first
    # batch of tiles the run says so (the marker file) and keeps computing until interrupted.
    # A shell's background job inherits SIGINT ignored; a terminal's Ctrl-C is the default.
    script = (
        "import signal, sys, time, pathlib, napari_mscgm.restoration.graph as g\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "real = g.restore_batches\n"
        "def batches(*a, **k):\n"
        "    out = real(*a, **k)\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n"
        "    while True: time.sleep(0.01)\n"
        "g.restore_batches = batches\n"
        "from napari_mscgm.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "restore", str(src), "-o", str(out),
         "--model", tiny_weights, "--steps", "2", "--tile", "32", "--overlap", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # a safety net for a broken run, not a measurement
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started computing"
            time.sleep(0.05)
        assert _leftovers(tmp_path)  # the temporary output is being written
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        marker.unlink(missing_ok=True)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"napari-mscgm: {word}"
    assert not out.exists()
    assert not _leftovers(tmp_path)
    assert _listing(tmp_path) == {src.name}
    assert _sha(src) == before
