"""Write docs/models/<name>.md from the bundled weights and the evaluation outputs.

    python training/model_card.py beads-sr2x --eval beads=/tmp/mscgm_eval/out-beads \
        --sweep /tmp/mscgm_eval/sweep-beads/steps.csv --log /tmp/mscgm_train/beads-sr2x.csv \
        --care-log /tmp/mscgm_train/beads-care.csv --notes training/beads-sr2x.notes.md

Every number in the card is read from those files; nothing is typed in by hand.
"""

import argparse
import csv
import json
from pathlib import Path

from napari_mscgm import load_model
from napari_mscgm.model_io.weights import load_care

ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("--eval", action="append", default=[], metavar="SET=DIR")
parser.add_argument("--sweep", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--care", default=None)
parser.add_argument("--notes", required=True)
args = parser.parse_args()

model = load_model(args.name, device="cpu")
c = model.config
p = c.physics
lines = [f"# Model card: `{c.name}`", "", c.description, ""]
lines += [
    "## Summary",
    "",
    "| | |",
    "|---|---|",
    f"| task | {c.task}, ×{c.scale} |",
    f"| file | `src/napari_mscgm/models/{c.name}.safetensors` "
    f"({(ROOT / 'src/napari_mscgm/models' / f'{c.name}.safetensors').stat().st_size / 1e6:.1f} MB), "
    f"SHA-256 `{model.sha256}` |",
    f"| method | MSCGM: {c.levels}-level Haar split; Brownian bridge (T={c.bbdp.num_timesteps}, "
    f"grad objective) on LL_{c.levels}; one conditional generator per scale |",
    f"| default steps | {c.bbdp.default_steps} (eta {c.bbdp.default_eta}) |",
    f"| parameters | {sum(v.numel() for v in model.state_dict().values()):,} |",
    f"| normalisation | input percentiles {c.normalization.pmin} / {c.normalization.pmax} |",
    f"| license | {c.license} |",
    "",
    "## Physics and expected input",
    "",
    "| | input | output (target) |",
    "|---|---|---|",
    f"| pixel size at the sample | {p.input_pixel_size_um} µm | {p.target_pixel_size_um} µm |",
    f"| NA | {p.input_na} | {p.target_na} |",
    f"| Airy FWHM 0.51 λ/NA | {0.51 * p.emission_wavelength_um / p.input_na:.3f} µm "
    f"| {0.51 * p.emission_wavelength_um / p.target_na:.3f} µm |",
    f"| emission wavelength | {p.emission_wavelength_um} µm | |",
    f"| modality | {p.modality} | |",
    "",
]
t = c.training
lines += [
    "## Training",
    "",
    f"- data: {t.data}",
    f"- command: `{t.command}`",
    f"- iterations: {', '.join(f'{k} {v}' for k, v in t.iterations.items())}",
    f"- wall time: {t.wall_time_s:.0f} s on a 2-core CPU, no GPU (threads and the earlier "
    'runs: see "How this model was made")',
    f"- date: {t.date}",
    "",
    "Validation during training (EMA weights, 4 held-out simulated images, "
    "CARE-style metrics; logged by the train command):",
    "",
    "| stage | iteration | loss | val PSNR (dB) | val SSIM | elapsed (s) |",
    "|---|---|---|---|---|---|",
]
with open(args.log) as fh:
    for r in csv.DictReader(fh):
        lines.append(
            f"| {r['stage']} | {r['iteration']} | {float(r['loss']):.4f} | "
            f"{float(r['val_psnr']):.2f} | {float(r['val_ssim']):.3f} | {r['elapsed_s']} |"
        )
lines.append("")
if args.care:
    care = load_care(args.care)
    ct = care.config.training
    lines += [
        f"CARE baseline (`--baseline care`, {sum(v.numel() for v in care.state_dict().values()):,} "
        f"parameters): `{ct.command}`, {ct.iterations}, {ct.wall_time_s:.0f} s.",
        "",
    ]
lines += ["## Metrics on held-out simulated data", ""]
for item in args.eval:
    label, directory = item.split("=", 1)
    doc = json.loads((Path(directory) / "metrics.json").read_text())
    info = doc["info"]
    lines += [
        f"### {label} ({info['pairs']} pairs, `{info['data']}`)",
        "",
        f"`napari-mscgm evaluate --model {c.name} --data {info['data']}"
        + (" --care CARE.safetensors" if info.get("care") else "")
        + f" -o {directory}` (steps {info['steps']}, eta {info.get('eta', 1.0)}, seed {info['seed']}, "
        f"Richardson–Lucy {info['rl_iterations']} iterations, kernel σ "
        f"{info['rl_sigma_target_px']:.3f} target pixels)",
        "",
        "| method | PSNR (dB) | SSIM | s / image |",
        "|---|---|---|---|",
    ]
    for method, s in doc["summary"].items():
        lines.append(f"| {method} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['seconds']:.2f} |")
    lines.append("")
lines += [
    "## Steps vs quality and time",
    "",
    "| steps | PSNR (dB) | SSIM | s / image |",
    "|---|---|---|---|",
]
with open(args.sweep) as fh:
    for r in csv.DictReader(fh):
        lines.append(
            f"| {r['steps']} | {float(r['psnr']):.2f} | {float(r['ssim']):.3f} | "
            f"{float(r['seconds_per_image']):.2f} |"
        )
lines += ["", Path(args.notes).read_text().strip(), ""]
lines += [(ROOT / "training" / "limitations.md").read_text().strip(), ""]
out = ROOT / "docs" / "models" / f"{c.name}.md"
out.write_text("\n".join(lines))
print(out)
