"""Simulated training pairs: generated in worker processes, cached on disk, normalised.

Pair ``i`` of a run depends only on ``(seed, i)`` (child ``i`` of
``numpy.random.SeedSequence(seed)``), so the pairs are the same whatever the number of
workers, and a cached set is the same as a fresh one. The cache key covers the
simulator's own source code, so a changed simulator never serves stale pairs.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..config.simulation import SimulationConfig
from ..core.normalize import PercentileNormalizer
from ..io.atomic import atomic_path
from .datasets import PairPool

__all__ = ["PairJob", "simulated_pool"]


@dataclass(frozen=True)
class PairJob:
    """One pair to simulate: its config, its place in the seed tree and its name."""

    config_json: str
    seed: int
    index: int
    shape: tuple[int, int]
    pmin: float
    pmax: float
    name: str


def _normalized(image: np.ndarray, pmin: float, pmax: float) -> np.ndarray:
    return PercentileNormalizer(pmin, pmax).fit(image).normalize(image).astype(np.float32)


def _simulate(job: PairJob) -> tuple[np.ndarray, np.ndarray]:
    """The normalised ``(low, high)`` of one job (runs in a worker process)."""
    from ..simulate import simulate_pair

    config = SimulationConfig.model_validate_json(job.config_json)
    # Child ``index`` of SeedSequence(seed), as SeedSequence.spawn makes it.
    child = np.random.SeedSequence(job.seed, spawn_key=(job.index,))
    pair = simulate_pair(config, shape=job.shape, rng=np.random.default_rng(child))
    return _normalized(pair.low, job.pmin, job.pmax), _normalized(pair.high, job.pmin, job.pmax)


def _jobs(
    source: str | SimulationConfig,
    n: int,
    shape: tuple[int, int],
    seed: int,
    pmin: float,
    pmax: float,
) -> list[PairJob]:
    """``"a+b"`` presets: ``n`` pairs split evenly, interleaved, each preset its own seed stream."""
    from ..simulate import preset_config

    if isinstance(source, SimulationConfig):
        named = [("sim", source)]
    else:
        named = [(p, preset_config(p)) for p in source.split("+")]
    counts = [n // len(named) + (i < n % len(named)) for i in range(len(named))]
    jobs = []
    for j in range(max(counts)):
        for i, (label, config) in enumerate(named):
            if j < counts[i]:
                name = f"{label}-{seed}-{j:04d}"
                json_doc = config.model_dump_json()
                jobs.append(PairJob(json_doc, seed + 7919 * i, j, shape, pmin, pmax, name))
    return jobs


def _fingerprint() -> str:
    """A digest of the simulator's source code (and the normaliser's)."""
    root = Path(str(resources.files("napari_mscgm")))
    digest = hashlib.sha256()
    for folder in ("simulate", "simulate/scenes"):
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.read_bytes())
    for path in ("core/optics.py", "core/normalize.py"):
        digest.update((root / path).read_bytes())
    return digest.hexdigest()


def _cache_file(cache_dir: Path, jobs: list[PairJob]) -> Path:
    key = json.dumps([_fingerprint(), [job.__dict__ for job in jobs]], sort_keys=True)
    return cache_dir / f"pairs-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def _generate(jobs: list[PairJob], workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if workers <= 1:
        return [_simulate(job) for job in jobs]
    # spawn, not fork: a forked child of a process with OpenMP threads can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_simulate, jobs, chunksize=max(1, len(jobs) // (8 * workers))))


def simulated_pool(
    source: str | SimulationConfig,
    *,
    n: int,
    shape: int | tuple[int, int] = 256,
    seed: int = 0,
    pmin: float = 1.0,
    pmax: float = 99.8,
    workers: int = 1,
    cache_dir: str | os.PathLike | None = None,
) -> PairPool:
    """Simulate ``n`` pairs once (or load them from ``cache_dir``) and normalise them.

    Parameters
    ----------
    source : str or SimulationConfig
        A simulator preset (see :func:`~napari_mscgm.simulate.preset_config`), several
        joined by ``+`` (``"cells+filaments"``) for an even mix, or a full config.
    n : int
        Number of pairs.
    shape : int or tuple of int
        Target-grid shape of each pair.
    seed : int
        Seed of the simulation.
    pmin, pmax : float
        Normalisation percentiles.
    workers : int
        Processes that simulate in parallel (the pairs do not depend on it).
    cache_dir : path, optional
        Keep the pairs in this folder and reuse them when the same set is asked again.
    """
    shape = (shape, shape) if isinstance(shape, int) else tuple(shape)
    jobs = _jobs(source, n, shape, seed, pmin, pmax)
    scale = SimulationConfig.model_validate_json(jobs[0].config_json).scale
    cached = None if cache_dir is None else _cache_file(Path(cache_dir), jobs)
    if cached is not None and cached.is_file():
        with np.load(cached) as stored:
            lows, highs = list(stored["lows"]), list(stored["highs"])
    else:
        pairs = _generate(jobs, workers)
        lows, highs = [p[0] for p in pairs], [p[1] for p in pairs]
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, lows=np.stack(lows), highs=np.stack(highs))
    return PairPool(lows, highs, scale, [job.name for job in jobs])
