"""``napari-mscgm train --for-microscope``: the options and the run (see train.py)."""

from __future__ import annotations

import argparse


def add_microscope_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "train for my microscope (--for-microscope)",
        "simulate pairs for these optics with every structure class and fine-tune the "
        "closest bundled generalist; -o is then a model name in the user model folder",
    )
    group.add_argument("--for-microscope", action="store_true", help="fine-tune for these optics")
    group.add_argument("--pixel-size", type=float, metavar="UM", help="pixel at the sample, µm")
    group.add_argument("--na", type=float, help="numerical aperture of the objective")
    group.add_argument("--wavelength", type=float, default=0.52, metavar="UM",
                       help="emission wavelength in µm (default 0.52)")  # fmt: skip
    group.add_argument("--immersion", default="air",
                       choices=["air", "water", "silicone", "glycerol", "oil"])  # fmt: skip
    group.add_argument("--task", default="denoise", choices=["denoise", "sr2x"])
    group.add_argument("--target-na", type=float, default=None,
                       help="sr2x: the output's NA (default: up to twice the input's)")  # fmt: skip
    group.add_argument("--camera", default="default", choices=["default", "auto", "given"],
                       help="auto: estimate gain, offset and read noise from --from IMAGE; "
                       "given: --gain, --offset, --read-noise")  # fmt: skip
    group.add_argument("--from", dest="from_image", metavar="IMAGE",
                       help="a raw image of this microscope (camera ADU) for --camera auto")  # fmt: skip
    group.add_argument("--gain", type=float, help="ADU per electron")
    group.add_argument("--offset", type=float, help="camera baseline, ADU")
    group.add_argument("--read-noise", type=float, help="electrons rms")
    group.add_argument("--overwrite", action="store_true", help="replace a model of that name")


def _camera(args: argparse.Namespace):
    from ..config.simulation import Camera
    from ..errors import InputError
    from ..io import read_image
    from ..training.microscope import camera_from_image

    if args.camera == "default":
        return None
    if args.camera == "given":
        if None in (args.gain, args.offset, args.read_noise):
            raise InputError("--camera given needs --gain, --offset and --read-noise")
        return Camera(
            gain_adu_per_e=args.gain, offset_adu=args.offset, read_noise_e=args.read_noise
        )
    if not args.from_image:
        raise InputError("--camera auto needs --from IMAGE (a raw image of this microscope)")
    image = read_image(args.from_image)
    plane = image.data.reshape((-1, *image.data.shape[-2:]))[0].compute()
    return camera_from_image(plane)


def run_for_microscope(args: argparse.Namespace, command: str) -> int:
    from pydantic import ValidationError

    from ..config._base import first_error
    from ..config.microscope import FineTuneConfig, MicroscopeSpec
    from ..errors import InputError
    from ..training.microscope import fine_tune_for_microscope

    if args.pixel_size is None or args.na is None:
        raise InputError("--for-microscope needs --pixel-size and --na")
    try:
        spec = MicroscopeSpec(
            pixel_size_um=args.pixel_size, na=args.na, wavelength_um=args.wavelength,
            immersion=args.immersion, task=args.task, target_na=args.target_na,
            camera=_camera(args),
        )  # fmt: skip
        tune = {"bridge_iterations": args.bridge_iterations,
                "generator_iterations": args.generator_iterations, "pairs": args.n,
                "crop": args.crop, "seed": args.seed, "workers": args.workers}  # fmt: skip
        fine_tune = FineTuneConfig(**{k: v for k, v in tune.items() if v is not None})
    except ValidationError as exc:
        raise InputError(f"impossible optics or settings: {first_error(exc)}") from None
    result = fine_tune_for_microscope(
        spec, args.output, fine_tune=fine_tune, overwrite=args.overwrite, device=args.device,
        threads=args.threads, command=command,
    )  # fmt: skip
    ours = next(v for k, v in result.metrics.items() if k.startswith("mscgm"))
    print(
        f"{result.path}: fine-tuned in {result.wall_time_s:.0f} s; held-out simulated pairs "
        f"PSNR {ours['psnr']:.2f} dB, SSIM {ours['ssim']:.3f}; card {result.card}"
    )
    return 0
