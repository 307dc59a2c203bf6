"""``napari-mscgm restore``: restore image files with a model, streaming to OME-TIFF or OME-Zarr.

Inputs are opened lazily and the result is written chunk by chunk, so stacks
larger than memory work; ``--scheduler`` runs the same tiles on a
dask.distributed cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from ._options import add_device_option, add_sampling_options

ORDER = 10
#: How long to wait for a dask scheduler given by --scheduler.
CONNECT_TIMEOUT = "20s"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="restore (super-resolve + denoise) image files",
        description=(
            "Restore one or more images with an MSCGM model. Inputs are TIFF/OME-TIFF or any "
            "format the installed bioio readers open. The result is float32 in input intensity "
            "units, with the physical pixel size divided by the model's scale and the run "
            "metadata embedded."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file(s)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output file for one input (.ome.tif/.tif: tiled OME-TIFF; .zarr: OME-Zarr); "
        "output directory for several (results are named <stem>_mscgm.ome.tif)",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="bundled model name (see 'napari-mscgm models') or a .safetensors file "
        "(default: fluo-sr2x, the generalist, when bundled)",
    )
    _add_sampling_options(parser)
    _add_run_options(parser)
    parser.set_defaults(func=run)


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """What the restoration computes: steps, seed, eta, samples."""
    add_sampling_options(parser)
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="restorations to average; above 1 also writes <output>_std (the uncertainty map)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """How it runs: tiles, batches, precision, device, threads, cluster, overwriting."""
    parser.add_argument(
        "--tile",
        type=int,
        default=256,
        metavar="N",
        help="tile edge in input pixels (default 256; 0 restores whole planes)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=32,
        metavar="N",
        help="overlap of neighbouring tiles in input pixels, blended without seams (default 32)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=4,
        metavar="N",
        help="tiles per forward pass (default 4; halved automatically on GPU out of memory)",
    )
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="bfloat16 runs the networks under autocast on CUDA: faster, less GPU memory "
        "(ignored on other devices; default float32)",
    )
    add_device_option(parser)
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a dask.distributed cluster (e.g. tcp://host:8786); workers write the "
        "output directly, so it must be on a filesystem they share",
    )
    parser.add_argument(
        "--consistency-map",
        action="store_true",
        help="also write <output>_consistency: the noise-normalised difference between the "
        "input and the result degraded back to it (the check itself always runs)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _output_paths(inputs: list[Path], output: Path) -> tuple[list[Path], Path | None]:
    """Where each result goes, and the output directory to create (if any).

    With one input, OUTPUT is the result unless it is an existing directory that is
    not itself an OME-Zarr result (``.zarr``); with several, it is a directory.
    """
    from ..errors import InputError
    from ..io import file_stem

    zarr_named = output.name.lower().endswith(".zarr")
    if len(inputs) == 1 and (zarr_named or not output.is_dir()):
        return [output], None
    if zarr_named:
        raise InputError(
            f"{output}: with several inputs, OUTPUT must be a directory, not a .zarr name"
        )
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: with several inputs, OUTPUT must be a directory")
    names = [output / f"{file_stem(p)}_mscgm.ome.tif" for p in inputs]
    if len(set(names)) != len(names):
        raise InputError("several inputs have the same file name stem; restore them separately")
    return names, None if output.exists() else output


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file: symlinks, ``..``, hard links, case-folding."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _check_outputs(
    inputs: list[Path], outputs: list[Path], new_dir: Path | None, args: argparse.Namespace
) -> None:
    """Refuse, before any work, every output that cannot or must not be written.

    ``new_dir`` is the output directory that the run will create: its parent is the
    one that must exist and be writable.
    """
    from ..errors import InputError, OutputError
    from ..io import check_output_path
    from ..restoration.write import consistency_map_path, std_path

    for dst in outputs:
        if not dst.name.lower().endswith((".tif", ".tiff", ".zarr")):
            raise InputError(f"{dst}: output must end in .ome.tif, .tif or .zarr")
        targets = [dst] + ([std_path(dst)] if args.samples > 1 else [])
        targets += [consistency_map_path(dst)] if args.consistency_map else []
        for target in targets:
            if any(_same_file(target, src) for src in inputs):
                raise InputError(f"{target}: output would overwrite an input; choose another name")
        for target in targets:
            if (target.exists() or target.is_symlink()) and not args.overwrite:
                raise OutputError(f"{target}: already exists (use --overwrite to replace it)")
            # The directory must exist and be writable; the run creates ``new_dir`` itself.
            check_output_path(new_dir if dst.parent == new_dir else target)


def _pixel_size_note(src: Path, x_um: float | None, model: Any) -> str | None:
    """A warning when the file's pixel size is far from the model's, else None."""
    from ..restoration.guard import pixel_size_mismatch

    expected = pixel_size_mismatch(x_um, model.config)
    if expected is None:
        return None
    # Readers report 1 µm when a file records no pixel size (plain TIFFs).
    hint = " (readers report 1 µm when the file records no pixel size)" if x_um == 1.0 else ""
    return (
        f"napari-mscgm: warning: {src.name} has {x_um:g} µm pixels{hint} but model "
        f"'{model.config.name}' expects {expected:g} µm; results may be unreliable"
    )


def _with_input(exc: Exception, src: Path) -> Exception:
    """``exc`` with the input file named, so that a batch says which file failed."""
    text = str(exc)
    if str(src) in text or src.name in text:
        return exc
    try:
        return type(exc)(f"{src}: {text}")
    except TypeError:  # an error class with another signature: keep it as it is
        return exc


def _connect(address: str):
    from ..errors import InputError

    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler needs the 'distributed' package") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot connect to the dask scheduler at {address} ({exc})") from None


#: RestoreOptions field → the flag that sets it, for messages in the CLI's own words.
_FLAGS = {
    "tile_size": "--tile", "batch_size": "--batch-size", "overlap": "--overlap",
    "samples": "--samples", "steps": "--steps", "seed": "--seed", "eta": "--eta",
    "threads": "--threads",
}  # fmt: skip


def _options(args: argparse.Namespace) -> Any:
    """The validated :class:`~napari_mscgm.RestoreOptions` of the command line."""
    from .. import RestoreOptions
    from ..errors import InputError

    try:
        return RestoreOptions(
            steps=args.steps, seed=args.seed, eta=args.eta, samples=args.samples,
            tile_size=args.tile or None, overlap=args.overlap, batch_size=args.batch_size,
            precision=args.precision, threads=args.threads, device=args.device,
            consistency_map=args.consistency_map,
        )  # fmt: skip
    except InputError as exc:
        text = str(exc).replace("(or None)", "(or 0 for whole planes)")
        for field, flag in _FLAGS.items():
            text = text.replace(field, flag)
        raise InputError(text) from None


def run(args: argparse.Namespace) -> int:
    from .. import load_model
    from ..errors import InputError
    from ..io import read_image
    from ..model_io.bundled import default_model

    inputs = [Path(p) for p in args.inputs]
    for path in inputs:
        if not path.exists():
            raise InputError(f"{path}: no such file")
    options = _options(args)  # bad options are refused before any work
    outputs, new_dir = _output_paths(inputs, Path(args.output))
    _check_outputs(inputs, outputs, new_dir, args)
    # Open every input (lazily) first: an unreadable file fails before any work.
    images = [read_image(src) for src in inputs]

    name = args.model or default_model()
    if name is None:
        raise InputError("no bundled models are installed; pass --model PATH.safetensors")
    client = _connect(args.scheduler) if args.scheduler else None
    if client is None:  # locally the model is loaded on the device; a cluster's workers pick
        options = options.model_copy(update={"device": None})
    if new_dir is not None:
        new_dir.mkdir()
    try:
        # With a cluster the workers pick their device; the client keeps a CPU copy to ship.
        model = load_model(name, device="cpu" if client is not None else args.device)
        for src, image, dst in zip(inputs, images, outputs, strict=True):
            _restore_file(src, image, dst, model, options, client)
            print(f"{src} -> {dst}")
    except BaseException:
        if new_dir is not None:  # created here: leave nothing behind when nothing is in it
            with contextlib.suppress(OSError):
                new_dir.rmdir()
        raise
    finally:
        if client is not None:
            client.close()
    return 0


def _restore_file(src: Path, image: Any, dst: Path, model: Any, options: Any, client: Any) -> None:
    """Restore one opened input into ``dst`` (written atomically by the restoration)."""
    from tqdm import tqdm

    from .. import restore
    from ..errors import InputError

    # Printed once the input has passed the restoration's checks, so that a refused input
    # gets its one error line only.
    note = _pixel_size_note(src, image.pixel_size_um[2], model)
    with tqdm(total=0, desc=src.name, unit="batch", disable=None, leave=False) as bar:

        def progress(done: int, total: int, bar: tqdm = bar) -> None:
            nonlocal note
            if note:
                tqdm.write(note, file=sys.stderr)
                note = None
            bar.total = total
            bar.update(done - bar.n)

        try:
            _, metadata = restore(
                image, model, options=options, progress=progress, out=dst, client=client,
                return_metadata=True,
            )  # fmt: skip
        except InputError as exc:
            raise _with_input(exc, src) from None
    if note:
        print(note, file=sys.stderr)
    warning = _consistency_warning(src, metadata.get("consistency"))
    if warning:
        print(warning, file=sys.stderr)


def _consistency_warning(src: Path, record: dict | None) -> str | None:
    """One line when the result contradicts the input (the exit code stays 0)."""
    if not record or record.get("verdict") != "inconsistent":
        return None
    share = 100 * record["inconsistent_fraction"]
    return (
        f"napari-mscgm: warning: {src.name}: the result is inconsistent with the input "
        f"({share:.0f} % of the area differs beyond noise once degraded back, RSP "
        f"{record['rsp']:.2f}); try another model, check the pixel size, or train a model "
        "for your microscope"
    )
