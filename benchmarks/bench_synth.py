"""Throughput of the synthetic data generator (run by hand).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_synth.py [--data ../shared/data/lmo] [--images 40]

Scenes of 640 x 480 with exactly 3 target objects (LM-O models when ../shared/data/lmo is present, else the example
object + 2 shrunk/stretched copies), the default SynthConfig otherwise (distractors 0-3, occluders 0-1, procedural
backgrounds, jitter, blur, noise). torch and numba limited to 1 (then 2) threads. Reports medians over
``--images`` scenes (after warm-up) of:
  * generate: the whole ``generate_prepared`` call (layout, rendering, compositing, augmentation) -> images/s;
  * its parts, re-run step by step on the same random streams: layout, render (rasterise + shade + full masks),
    background, augmentation;
  * write: PNG encoding and writing of rgb, depth and masks of one image (not part of "generate");
  * the SynthPoseDataset item rate (one scene + crop + perturbation);
  * the throughput of 2 worker processes with 1 thread each (how a DataLoader with 2 workers uses 2 cores).
Writes benchmarks/results/synth.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", REPO.parent / "shared" / "data")) / "lmo"


def objects_for(data: Path):
    from iterpose.mesh import example_object, load_objects

    if (data / "models").is_dir():
        objs = load_objects(data / "models")
        return list(objs.values()), f"LM-O models ({len(objs)} objects, {data / 'models'})"
    a, b, c = example_object(1), example_object(2), example_object(3)
    b = dataclasses.replace(b, vertices=b.vertices * 0.7, diameter_m=b.diameter_m * 0.7)
    c = dataclasses.replace(c, vertices=c.vertices * torch.tensor([1.3, 0.8, 1.0]))
    return [a, b, c], "example object + 2 variants (LM-O data absent)"


_WORKER: dict = {}


def _worker_init(data: str) -> None:
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    from iterpose.data import synth as S

    objects, _ = objects_for(Path(data))
    _WORKER["meshes"] = S.prepare_objects(objects)
    _WORKER["cfg"] = S.SynthConfig(objects_per_image=(3, 3))
    for k in range(2):  # warm-up
        S.generate_prepared(_WORKER["meshes"], _WORKER["cfg"], S.scene_rng(999, k))


def _worker_generate(indices: list[int]) -> int:
    from iterpose.data import synth as S

    for k in indices:
        S.generate_prepared(_WORKER["meshes"], _WORKER["cfg"], S.scene_rng(0, k))
    return len(indices)


def two_process_rate(data: Path, n_images: int) -> float:
    """Images/s of 2 single-threaded worker processes (what a DataLoader with num_workers=2 does)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=mp.get_context("forkserver"), initializer=_worker_init,
                             initargs=(str(data),)) as ex:
        list(ex.map(_worker_generate, [[0], [1]]))  # both workers started and warm
        chunks = [list(range(i, n_images, 4)) for i in range(4)]
        t = time.perf_counter()
        done = sum(ex.map(_worker_generate, chunks))
        return done / (time.perf_counter() - t)


def median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and numba threads for the step-by-step timings (default 1; 'generate' is also "
                         "timed with 2)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "synth.json")
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    from iterpose.data import synth as S
    from iterpose.data.synth_dataset import SynthPoseDataset
    from iterpose.data.synth_layout import layout
    from iterpose.data.synth_render import render_instances
    from iterpose.data.synth_writer import DEPTH_SCALE, _write_image

    objects, source = objects_for(args.data)
    cfg = S.SynthConfig(objects_per_image=(3, 3))
    meshes = S.prepare_objects(objects)
    for k in range(3):  # warm-up: numba caches, noise tile
        S.generate_prepared(meshes, cfg, S.scene_rng(999, k))

    total, parts = [], {"layout": [], "render": [], "background": [], "augment": []}
    n_inst, n_faces = [], []
    for k in range(args.images):
        t = time.perf_counter()
        scene = S.generate_prepared(meshes, cfg, S.scene_rng(0, k))
        total.append(time.perf_counter() - t)
        n_inst.append(scene.num_instances)
        # the same steps one by one (one layout attempt; generate_prepared may redraw when targets are hidden)
        rng = S.scene_rng(0, k)
        t0 = time.perf_counter()
        inst = layout(meshes, cfg, rng, True)
        t1 = time.perf_counter()
        n_targets = sum(i.target_index >= 0 for i in inst)
        ren = render_instances(inst, n_targets, cfg, np.array([0.0, 0.0, -1.0]), 0.5, 0.5)
        t2 = time.perf_counter()
        img = S._background(cfg, rng)
        on = ren.instance >= 0
        img[on] = ren.color[on]
        t3 = time.perf_counter()
        S._augment(img, cfg, rng)
        t4 = time.perf_counter()
        for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[name].append(dt)
        n_faces.append(sum(len(i.mesh.faces) for i in inst))

    write = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for sub in ("rgb", "depth", "mask", "mask_visib"):
            (d / sub).mkdir()
        for k in range(min(args.images, 15)):
            scene = S.generate_prepared(meshes, cfg, S.scene_rng(0, k))
            t = time.perf_counter()
            _write_image(scene, d, k, DEPTH_SCALE)
            write.append(time.perf_counter() - t)

    ds = SynthPoseDataset(objects, cfg, length=args.images, seed=0)
    ds[0]
    items = []
    for k in range(min(args.images, 20)):
        t = time.perf_counter()
        ds[k]
        items.append(time.perf_counter() - t)

    rate2 = two_process_rate(args.data, args.images)
    gen_ms = median_ms(total)
    other = 2 if args.threads != 2 else 1
    torch.set_num_threads(other)
    numba.set_num_threads(min(other, numba.config.NUMBA_NUM_THREADS))
    total_other = []
    for k in range(args.images):
        t = time.perf_counter()
        S.generate_prepared(meshes, cfg, S.scene_rng(0, k))
        total_other.append(time.perf_counter() - t)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    result = {
        "what": "synthetic scene generation, 640x480, 3 target objects per image, default SynthConfig",
        "objects": source,
        "images_measured": args.images,
        "threads": {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
        "note": "shared 2-core machine with other jobs running (load_average_1min): medians; parts are one layout "
                "attempt each; background includes compositing the objects over it",
        "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "median_ms": {
            "generate_total": gen_ms,
            **{k: median_ms(v) for k, v in parts.items()},
            "write_pngs": median_ms(write),
            "dataset_item": median_ms(items),
        },
        "images_per_s": round(1000.0 / gen_ms, 2),
        f"generate_total_ms_with_{other}_threads": median_ms(total_other),
        f"images_per_s_with_{other}_threads": round(1000.0 / median_ms(total_other), 2),
        "images_per_s_2_processes_1_thread_each": round(rate2, 2),
        "images_per_s_with_writing": round(1000.0 / (gen_ms + median_ms(write)), 2),
        "dataset_items_per_s": round(1000.0 / median_ms(items), 2),
        "target_images_per_s": 30,
        "mean_targets": round(float(np.mean(n_inst)), 2),
        "mean_faces_rendered": int(np.mean(n_faces)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
