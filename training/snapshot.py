"""The EMA weights of a training checkpoint, as a model file (to score a run in progress).

    python training/snapshot.py training/runs/fluo-sr2x-care.checkpoint.safetensors \
        training/runs/fluo-sr2x-care-partial.safetensors

Works for MSCGM and the CARE baseline. The snapshot's provenance records the iteration
it was taken at, so an evaluation of it cannot pass for the finished run.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from napari_mscgm.config import CAREConfig, ModelConfig, TrainingInfo
from napari_mscgm.core.care import CARENet
from napari_mscgm.core.mscgm import MSCGM
from napari_mscgm.model_io.weights import save_model
from napari_mscgm.training.checkpoint import load_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint", type=Path)
parser.add_argument("output", type=Path)
args = parser.parse_args()

with tempfile.TemporaryDirectory() as folder:  # a copy: the run may rewrite it meanwhile
    copy = Path(folder) / args.checkpoint.name
    shutil.copy(args.checkpoint, copy)
    tensors, meta = load_checkpoint(copy)
stored = meta["model_config"]
config = (
    ModelConfig.model_validate(stored) if "levels" in stored else CAREConfig.model_validate(stored)
)
done = f"stage {meta['stage_index']}, iteration {meta['iteration']}"
config = config.model_copy(update={"training": TrainingInfo(
    data=f"snapshot of {args.checkpoint.name} at {done} ({meta['elapsed_s']:.0f} s)",
    wall_time_s=round(meta["elapsed_s"], 1))})  # fmt: skip
model = MSCGM(config) if isinstance(config, ModelConfig) else CARENet(config)
model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
save_model(model, args.output)
print(args.output, done)
