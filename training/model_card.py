"""Write docs/models/<name>.md from the bundled weights and the evaluation outputs.

    python training/model_card.py fluo-sr2x

Reads what ``bash training/evaluate.sh score MODEL`` and ``sweep MODEL`` wrote under
training/eval/ (``MODEL``, ``MODEL-uncertainty``, ``MODEL-sweep``, ``MODEL-shift``,
``MODEL-loso``, and the specialists), the training log training/runs/MODEL.csv (or
training/logs/MODEL.csv), training/MODEL.notes.md and training/limitations.md. Every
number in the card is read from those files; nothing is typed in by hand, and the
quality bar of each row is checked here from the same numbers.
"""

import argparse
import csv
import json
from pathlib import Path

from napari_mscgm import load_model

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "training" / "eval"

parser = argparse.ArgumentParser()
parser.add_argument("name")
args = parser.parse_args()

model = load_model(args.name, device="cpu")
c = model.config
p = c.physics
sr = c.scale > 1


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file (a training log, a sweep)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def load(run: str) -> dict | None:
    path = EVAL / run / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def method(summary: dict, prefix: str) -> dict | None:
    """The first method whose name starts with ``prefix`` (names carry settings)."""
    return next((v for k, v in summary.items() if k.startswith(prefix)), None)


def command(doc: dict, run: str) -> str:
    info = doc["info"]
    data = " ".join(d.replace(str(ROOT) + "/", "") for d in info["data"])
    care = " --care training/runs/" + Path(info["care"]).name if info.get("care") else ""
    samples = f" --samples {info['samples']}" if info.get("samples", 1) > 1 else ""
    return (
        f"napari-mscgm evaluate --model {info['model']} --data {data}{care}{samples} "
        f"-o training/eval/{run}"
    )


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def check(ok: bool) -> str:
    return "yes" if ok else "**no**"


size_mb = (ROOT / "src/napari_mscgm/models" / f"{c.name}.safetensors").stat().st_size / 1e6
lines = [f"# Model card: `{c.name}`", "", c.description, ""]
calibration = c.calibration
lines += [
    "## Summary",
    "",
    "| | |",
    "|---|---|",
    f"| task | {c.task}, ×{c.scale} |",
    f"| file | `src/napari_mscgm/models/{c.name}.safetensors` ({size_mb:.1f} MB), "
    f"SHA-256 `{model.sha256}` |",
    f"| method | MSCGM: {c.levels}-level Haar split; Brownian bridge (T={c.bbdp.num_timesteps}, "
    f"grad objective) on LL_{c.levels}; one conditional generator per scale |",
    f"| default steps | {c.bbdp.default_steps} (eta {c.bbdp.default_eta}), from the sweep below |",
    f"| parameters | {sum(v.numel() for v in model.state_dict().values()):,} |",
    f"| normalisation | input percentiles {c.normalization.pmin} / {c.normalization.pmax} |",
    "| uncertainty | "
    + (
        f"calibrated std (fitted on {calibration.fitted_on}, {calibration.samples} samples; "
        f"±1.645 σ covered {calibration.coverage:.1%} there)"
        if calibration
        else "raw sample std (not calibrated)"
    )
    + " |",
    "| observation blend | "
    + (
        f"keeps the input's LL_{c.levels} where its local noise is below the bridge's error "
        f"(floor {c.observation_blend.floor:g}, max weight {c.observation_blend.max_weight:g}; "
        f"fitted on {c.observation_blend.fitted_on})"
        if c.observation_blend
        else "none"
    )
    + " |",
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
    "## How the bundled weights were made",
    "",
    f"- recipe: [`training/{c.name}.json`](../../training/{c.name}.json), one command: "
    f"`bash training/train.sh {c.name}` (resumable: run it again after an interruption)",
    f"- data: {t.data}",
    f"- command as run: `{t.command}`",
    f"- iterations: {', '.join(f'{k} {v}' for k, v in t.iterations.items())}",
    f"- wall time: {fmt(t.wall_time_s, '.0f')} s of training on a 2-core CPU, no GPU",
    f"- date: {t.date}",
    f"- then: `bash training/evaluate.sh bundle {c.name} {c.bbdp.default_steps}` "
    "(std calibration on the calibration set, default steps)",
    "",
]
log = next(
    (q for q in (ROOT / "training/runs" / f"{c.name}.csv", ROOT / "training/logs" / f"{c.name}.csv")
     if q.exists()),
    None,
)  # fmt: skip
if log:
    lines += [
        "Validation during training (EMA weights, held-out simulated pairs, CARE-style "
        "metrics; logged by the train command):",
        "",
        "| stage | iteration | loss | val PSNR (dB) | val SSIM | elapsed (s) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['stage']} | {r['iteration']} | {float(r['loss']):.4f} | "
        f"{float(r['val_psnr']):.2f} | {float(r['val_ssim']):.3f} | {r['elapsed_s']} |"
        for r in read_rows(log)
    ]
    lines.append("")

main = load(c.name)
if main:
    summary = main["summary"]
    some = next(iter(summary.values()))
    names = list(some)
    mscgm_name = next(k for k in names if k.startswith("mscgm"))
    baselines = [k for k in names if k.startswith(("bicubic", "richardson", "non-local"))]
    lines += [
        "## Per structure, held-out data",
        "",
        f"`{command(main, c.name)}`",
        "",
        "Each set: 6 simulated pairs (256² target pixels) of one structure class "
        "(docs/simulator.md) at the model's own optics; `-low`: 20–60 peak photons, "
        "`-high`: 300–1000 (seeds 9001–9004, never used in training). PSNR and SSIM after "
        "CARE's percentile normalisation and affine fit; HF-error: band-pass (DoG σ 0.7, "
        "2.0 target pixels) energy of the error over that of the ground truth, where "
        "above 1 most of the fine detail drawn is not in the sample.",
        "",
    ]
    for measure, title, spec in (
        ("psnr", "PSNR (dB)", ".2f"),
        ("ssim", "SSIM", ".3f"),
        ("hf_error", "HF-error ratio", ".2f"),
    ):
        lines += [f"**{title}**", "", "| set | " + " | ".join(names) + " |"]
        lines.append("|---" * (len(names) + 1) + "|")
        for set_name, methods in summary.items():
            lines.append(
                f"| {set_name} | "
                + " | ".join(fmt(methods[m].get(measure), spec) for m in names)
                + " |"
            )
        lines.append("")
    lines += [
        "**Time** (seconds per output megapixel, mean over all sets, this 2-core CPU while "
        "training ran beside it: compare the columns, not the absolute numbers)",
        "",
        "| " + " | ".join(names) + " |",
        "|---" * len(names) + "|",
        "| "
        + " | ".join(
            f"{sum(s[m]['seconds_per_mp'] for s in summary.values()) / len(summary):.2f}"
            for m in names
        )
        + " |",
        "",
        "### Quality bar",
        "",
    ]
    if sr:
        lines += [
            "Asked: PSNR ≥ best of bicubic / Richardson–Lucy + 2.5 dB, SSIM ≥ 0.80, "
            "HF-error ratio ≤ 1.0, SSIM above the equal-budget CARE.",
            "",
            "| set | MSCGM − best classical (dB) | ≥ 2.5 | SSIM ≥ 0.80 | HF ≤ 1.0 | SSIM > CARE |",
            "|---|---|---|---|---|---|",
        ]
    else:
        lines += [
            "Asked: PSNR ≥ non-local means + 2 dB and SSIM ≥ 0.80.",
            "",
            "| set | MSCGM − NLM (dB) | ≥ 2 | SSIM ≥ 0.80 | SSIM > CARE |",
            "|---|---|---|---|---|",
        ]
    passed = 0
    for set_name, methods in summary.items():
        ours = methods[mscgm_name]
        if ours["psnr"] is None:  # only empty fields
            continue
        gain = ours["psnr"] - max(methods[b]["psnr"] for b in baselines)
        care = method(methods, "care")
        beats_care = None if care is None else ours["ssim"] > care["ssim"]
        oks = [gain >= (2.5 if sr else 2.0), ours["ssim"] >= 0.80]
        if sr:
            oks.append(ours["hf_error"] <= 1.0)
        cells = [f"{gain:+.2f}", *map(check, oks)]
        cells.append("no CARE yet" if beats_care is None else check(beats_care))
        passed += all(oks) and beats_care is not False
        lines.append(f"| {set_name} | " + " | ".join(cells) + " |")
    lines += ["", f"Met on {passed} of {len(summary)} sets.", ""]
    verdicts = [(k, v[mscgm_name].get("inconsistent_rate")) for k, v in summary.items()]
    lines += [
        "### Consistency verdicts on held-out data (right model)",
        "",
        "Share of images whose restoration the consistency check calls *inconsistent* "
        "(it should be near 0 here):",
        "",
        "| " + " | ".join(k for k, _ in verdicts) + " |",
        "|---" * len(verdicts) + "|",
        "| " + " | ".join(fmt(v, ".2f") for _, v in verdicts) + " |",
        "",
    ]

unc = load(f"{c.name}-uncertainty")
if unc:
    lines += [
        "## Uncertainty: calibrated std against the true error",
        "",
        f"`{command(unc, c.name + '-uncertainty')} --limit 2`",
        "",
        "Coverage: share of pixels whose error is within ±1.645 σ (90 % asked). Spearman: "
        "rank correlation of σ with the absolute error, per pixel. Error/σ: median "
        "absolute error over median σ (0.67 for a calibrated Gaussian).",
        "",
        "| set | coverage 90 % | Spearman | error / σ |",
        "|---|---|---|---|",
    ]
    for set_name, methods in unc["summary"].items():
        s = method(methods, "mscgm")
        lines.append(
            f"| {set_name} | {fmt(s.get('coverage_90'), '.3f')} | {fmt(s.get('spearman'), '.2f')}"
            f" | {fmt(s.get('error_over_std'), '.2f')} |"
        )
    lines.append("")


def small_table(doc: dict, run: str, title: str, text: str, bar: str | None = None) -> list[str]:
    out = [f"## {title}", "", text, "", f"`{command(doc, run)}`", ""]
    out += [
        "| set | method | PSNR (dB) | SSIM | HF-error | inconsistent |",
        "|---|---|---|---|---|---|",
    ]
    for set_name, methods in doc["summary"].items():
        for name, s in methods.items():
            out.append(
                f"| {set_name} | {name} | {s['psnr']:.2f} | {s['ssim']:.3f} | "
                f"{s['hf_error']:.2f} | {fmt(s.get('inconsistent_rate'), '.2f')} |"
            )
    return out + (["", bar] if bar else []) + [""]


def gains(doc: dict) -> dict[str, tuple[float, float]]:
    """Per set: MSCGM's PSNR over the best baseline, and its HF-error ratio."""
    out = {}
    for set_name, methods in doc["summary"].items():
        ours = method(methods, "mscgm")
        best = max(v["psnr"] for k, v in methods.items()
                   if k.startswith(("bicubic", "richardson", "care")))  # fmt: skip
        out[set_name] = (ours["psnr"] - best, ours["hf_error"])
    return out


loso = load(f"{c.name}-loso")
if loso:
    g = gains(loso)
    bar = "Asked of the left-out classes: PSNR ≥ best baseline + 1.5 dB and HF-error ≤ 1.0. " + (
        "; ".join(
            f"{k}: {d:+.2f} dB ({check(d >= 1.5)}), HF {h:.2f} ({check(h <= 1.0)})"
            for k, (d, h) in g.items()
        )
    )
    lines += small_table(
        loso,
        f"{c.name}-loso",
        "Leave structures out",
        f"`training/{c.name}-loso.json`: the same recipe, but no class with nuclei (nuclei, "
        "cells, tissue) and no ER in its training data; scored on nuclei and ER, structures "
        "it never saw (the stand-in for a real sample we never drew). Stricter than leaving "
        "one class out: the variant saw neither.",
        bar,
    )
shift = load(f"{c.name}-shift")
if shift:
    g = gains(shift)
    rl = {k: method(v, "richardson") for k, v in shift["summary"].items()}
    ours = {k: method(v, "mscgm") for k, v in shift["summary"].items()}
    bar = "Asked: no worse than Richardson–Lucy. " + "; ".join(
        f"{k}: MSCGM {ours[k]['psnr']:.2f} dB / {ours[k]['ssim']:.3f} vs RL "
        f"{rl[k]['psnr']:.2f} / {rl[k]['ssim']:.3f} ({check(ours[k]['psnr'] >= rl[k]['psnr'])})"
        for k in ours
    )
    lines += small_table(
        shift,
        f"{c.name}-shift",
        "Domain shift: a 0.3 NA input",
        "24 mixed-class pairs imaged through a 0.3 NA objective (the model expects 0.4; "
        "same pixels), 30–1000 peak photons. Every method is given the model's 0.4 NA "
        "physics, as a user who does not know better would.",
        bar,
    )

sweep = EVAL / f"{c.name}-sweep" / "steps.csv"
if sweep.exists():
    rows = read_rows(sweep)
    steps = ",".join(r["steps"] for r in rows)  # the sweep as it was run
    lines += [
        "## Steps vs quality and diversity",
        "",
        f"`napari-mscgm evaluate --model training/runs/{c.name}.safetensors --data "
        f"<every per-structure set> --limit 1 --steps-sweep {steps}` "
        "(one image per set, 4 samples each; sample std: mean std over the result's range)",
        "",
        "| steps | PSNR (dB) | SSIM | HF-error | sample std | s / sample |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['steps']} | {float(r['psnr']):.2f} | {float(r['ssim']):.3f} | "
        f"{float(r['hf_error']):.2f} | {float(r['sample_std']):.4f} | {float(r['seconds']):.2f} |"
        for r in rows
    ]
    lines.append("")

if sr and main:
    rows = []
    for specialist in ("cells-sr2x", "beads-sr2x"):
        doc = load(specialist)
        if doc is None:
            continue
        for set_name, methods in doc["summary"].items():
            theirs, ours = method(methods, "mscgm"), method(main["summary"][set_name], "mscgm")
            rows.append(
                f"| {set_name} | {specialist} {theirs['psnr']:.2f} / {theirs['ssim']:.3f} / "
                f"{theirs['hf_error']:.2f} | {ours['psnr']:.2f} / {ours['ssim']:.3f} / "
                f"{ours['hf_error']:.2f} | {fmt(theirs.get('inconsistent_rate'), '.2f')} |"
            )
    if rows:
        lines += [
            "## Against the specialists",
            "",
            "The older specialist models on the same sets (`bash training/evaluate.sh score` "
            "runs them): PSNR / SSIM / HF-error of each, and how often the consistency check "
            "flags the specialist (on classes it was not made for, that is the wrong-model "
            "guard at work).",
            "",
            f"| set | specialist | {c.name} | specialist flagged |",
            "|---|---|---|---|",
            *rows,
            "",
        ]

figure = ROOT / "docs" / "images" / "models" / f"{c.name}.png"
if figure.exists():
    lines += [
        "## Pictures per class",
        "",
        f"`python training/card_figures.py {c.name}`: the first `-low` image of each class; "
        "input (nearest), restoration (mean of 8 samples at the default steps), ground "
        "truth, calibrated std.",
        "",
        f"![{c.name} on every class](../images/models/{c.name}.png)",
        "",
    ]
notes = ROOT / "training" / f"{c.name}.notes.md"
if notes.exists():
    lines += [notes.read_text().strip(), ""]
lines += [(ROOT / "training" / "limitations.md").read_text().strip(), ""]
out = ROOT / "docs" / "models" / f"{c.name}.md"
out.write_text("\n".join(lines))
print(out)
