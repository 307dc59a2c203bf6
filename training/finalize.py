"""Install a trained model as a bundled model: set its default steps, copy, checksum.

    python training/finalize.py /tmp/mscgm_train/beads-sr2x.safetensors --default-steps 10

Writes src/napari_mscgm/models/<name>.safetensors (the weights are unchanged;
only ``bbdp.default_steps`` (and ``default_eta``) in the metadata are set, chosen from the
steps-vs-PSNR curve of ``napari-mscgm evaluate --steps-sweep``) and rewrites
models/SHA256SUMS for every bundled model.
"""

import argparse
from pathlib import Path

from napari_mscgm import load_model, save_model
from napari_mscgm.model_io.bundled import file_sha256

MODELS = Path(__file__).resolve().parents[1] / "src" / "napari_mscgm" / "models"

parser = argparse.ArgumentParser()
parser.add_argument("weights")
parser.add_argument("--default-steps", type=int, required=True)
parser.add_argument("--default-eta", type=float, default=None)
args = parser.parse_args()

model = load_model(args.weights, device="cpu")
update = {"default_steps": args.default_steps}
if args.default_eta is not None:
    update["default_eta"] = args.default_eta
bbdp = model.config.bbdp.model_copy(update=update)
model.config = model.config.model_copy(update={"bbdp": bbdp})
path = save_model(model, MODELS / f"{model.config.name}.safetensors")
lines = [f"{file_sha256(p)}  {p.name}\n" for p in sorted(MODELS.glob("*.safetensors"))]
(MODELS / "SHA256SUMS").write_text("".join(lines))
print(path, f"{path.stat().st_size / 1e6:.1f} MB")
print("".join(lines), end="")
