#!/usr/bin/env bash
# The measurements behind RESULTS_deepim.md / RESULTS_repose.md, with the shipped weights (run after stopping any
# training; about 2 hours on 2 cores). Needs ../shared/data (the scripts skip cleanly without it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src
PY=.venv/bin/python
R=weights/lmo-repose.pt
D=weights/lmo-deepim.pt
C=weights/lmo-deepim-coarse.pt  # the phase 3 file: the DeepIM behind the hypotheses rows
S=weights/lmo-scorer.pt
$PY benchmarks/bench_refine_lmo.py --method repose --weights $R --threads 2
$PY benchmarks/bench_refine_lmo.py --method deepim --weights $D --threads 2
$PY benchmarks/bench_refine_lmo.py --method deepim+repose --weights $D $R --threads 2
$PY benchmarks/bench_refine_lmo.py --method deepim+rgb-lm --weights $D --threads 2
$PY benchmarks/bench_refine_lmo.py --method rgb-lm,deepim,deepim+rgb-lm --weights $D --threads 2   # the ensemble
# 7 rotated starts per object, ranked by the outline score (about 7x the time)
$PY benchmarks/bench_refine_lmo.py --method deepim --weights $C --threads 2 --hypotheses 7 --tag hyp7
$PY benchmarks/bench_refine_lmo.py --method deepim+rgb-lm --weights $C --threads 2 --hypotheses 7 --tag hyp7
# ... ranked by the learned pose scorer
$PY benchmarks/bench_refine_lmo.py --method deepim+rgb-lm --weights $C --threads 2 --hypotheses 7 --scorer $S \
    --tag hyp7_scorer
# the same with the shipped (phase 7) file, which was trained on small errors only (session 9)
$PY benchmarks/bench_refine_lmo.py --method deepim --weights $D --threads 2 --hypotheses 7 --tag hyp7_phase7
$PY benchmarks/bench_refine_lmo.py --method deepim+rgb-lm --weights $D --threads 2 --hypotheses 7 --tag hyp7_phase7
$PY benchmarks/bench_refine_lmo.py --method deepim+rgb-lm --weights $D --threads 2 --hypotheses 7 --scorer $S \
    --tag hyp7_scorer_phase7
$PY benchmarks/probe_hypothesis_ranking.py --method deepim+rgb-lm --weights $C --every 2 --threads 2 --scorer $S --tag scorer
$PY benchmarks/bench_scorer_synth.py --weights $S --threads 2
# session 11: RGB-LM's score (and score - 0.1 log predicted error) as the hypotheses' ranking; a depth search on the
# ensemble's kpt result (its refined CSV, written by the ensemble line above to the default work dir)
$PY benchmarks/probe_hypothesis_ranking.py --method deepim+rgb-lm --weights $C --every 1 --threads 2 --scorer $S --tag colour
$PY benchmarks/probe_depth_search.py ../shared/data/lmo-init/kpt_lmo-test.csv \
    /tmp/iterpose_bench_lmo/rgb_lm_or_deepim_or_deepim+rgb_lm_lmokpt_lmo-test.csv --tag ensemble_kpt
# session 12: DeepIM's flow and mask heads (phase 10; the run's weights, not shipped, where the run exists)
A=$HOME/runs/s12-aux/final.pt
if [ -f "$A" ]; then
    $PY benchmarks/bench_refine_lmo.py --method deepim --weights $A --threads 2 --tag s12_aux
    for w in $D:s12_shipped $A:s12_aux; do
        $PY benchmarks/probe_deepim_synthetic.py --weights ${w%%:*} --config weights/lmo-deepim.phase7-fine.yaml \
            --backgrounds clutter --levels 2.5 5 --batches 12 --threads 2 --tag ${w##*:}
    done
    $PY benchmarks/probe_deepim_aux_real.py --weights $A --level 5 --threads 2 --tag s12_aux_5deg
    $PY benchmarks/probe_deepim_aux_real.py --weights $A --level 2.5 --threads 2 --tag s12_aux_2p5deg
    $PY benchmarks/probe_flow_pose.py --weights $A --schedules RR RRF RF --threads 2 --tag s12_aux
fi
# ... and the observed crop faded away from the estimate (phase 11, focus_px 8)
F=$HOME/runs/s12-focus/final.pt
if [ -f "$F" ]; then
    $PY benchmarks/bench_refine_lmo.py --method deepim --weights $F --threads 2 --tag s12_focus
fi
# ... and more compute on the coarse line (phase 12, session 13): alone, in the cascade, behind the hypotheses, and
# in its own domain next to the coarse file (export it first: iterpose train --method deepim --objects
# ../shared/data/lmo/models --out ~/runs/s13-long --export ~/runs/s13-long/p12.pt --iterations 2)
P12=$HOME/runs/s13-long/p12.pt
if [ -f "$P12" ]; then
    $PY benchmarks/bench_refine_lmo.py --method deepim --weights $P12 --threads 2 --tag s13_p12
    $PY benchmarks/bench_refine_lmo.py --method deepim+rgb-lm --weights $P12 --threads 2 --tag s13_p12
    for w in $P12:s13_p12 $C:s13_coarse; do
        $PY benchmarks/bench_refine_lmo.py --method deepim+rgb-lm --weights ${w%%:*} --threads 2 --hypotheses 7 \
            --scorer $S --init perturbed --tag ${w##*:}_hyp7_scorer
        $PY benchmarks/probe_deepim_synthetic.py --weights ${w%%:*} --backgrounds clutter --levels 5 15 --batches 10 \
            --threads 2 --tag s13_$(basename ${w%%:*} .pt)
    done
fi
for w in $D:s12_shipped $A:s12_aux $F:s12_focus; do
    if [ -f "${w%%:*}" ]; then
        $PY benchmarks/bench_basin_real.py --methods deepim --weights deepim=${w%%:*} --levels 2.5 5 15 --threads 2 \
            --tag ${w##*:}
    fi
done
$PY benchmarks/probe_gt_edges.py --threads 2   # image edges around the ground-truth outlines, real vs synthetic
$PY benchmarks/probe_gt_scale.py --threads 2   # session 13: the depth those edges agree with, per object
$PY benchmarks/probe_sharpness.py --threads 2   # session 13: DeepIM's depth on blurred / sharpened real images
$PY benchmarks/probe_sharpness.py --method rgb-lm --init kpt --threads 2 --tag rgb_lm
# ... and phase 13, trained with an unsharp mask as augmentation (export it first: iterpose train --method deepim
# --objects ../shared/data/lmo/models --out ~/runs/s13-sharp --export ~/runs/s13-sharp/p13.pt)
if [ -f "$HOME/runs/s13-sharp/p13.pt" ]; then
    $PY benchmarks/probe_sharpness.py --weights $HOME/runs/s13-sharp/p13.pt --threads 2 --tag s13_p13
fi
# what on a real image moves a near-correct pose: objects repainted / surroundings replaced (session 8)
# (session 8's deepim / deepim_ring / s8_2p5 files were measured with the phase 3 file, now $C)
$PY benchmarks/probe_appearance_gap.py --weights deepim=$C --every 2 --threads 1 --tag deepim
$PY benchmarks/probe_appearance_gap.py --weights deepim=$C --every 2 --levels 2.5 --ring 3 8 --threads 1 \
    --tag deepim_ring
$PY benchmarks/probe_appearance_gap.py --weights deepim=$D --every 2 --levels 2.5 --threads 2 --tag s9_fine
$PY benchmarks/probe_appearance_gap.py --method rgb-lm --weights --every 2 --threads 1 --tag rgb-lm
$PY benchmarks/probe_deepim_synthetic.py --weights $C --backgrounds clutter --levels 2.5 --batches 12 --threads 1 --tag s8_2p5
for w in $D:s9_fine $C:s9_phase3; do
    $PY benchmarks/probe_deepim_synthetic.py --weights ${w%%:*} --config weights/lmo-deepim.phase3-anneal.yaml \
        --backgrounds clutter --levels 2.5 5 --batches 12 --threads 2 --tag ${w##*:}
done
$PY benchmarks/diagnose_pose_errors.py ../shared/data/lmo-init/kpt_lmo-test.csv ../shared/data/lmo-init/perturbed_lmo-test.csv \
    --what-if   # add refined CSVs (bench_refine_lmo.py writes them to /tmp/iterpose_bench_lmo) to compare methods
$PY benchmarks/table_lmo.py RGB-LM=benchmarks/results/rgb_lm_lmo.json RePOSE=benchmarks/results/repose_lmo.json \
    DeepIM=benchmarks/results/deepim_lmo.json DeepIM+RePOSE=benchmarks/results/deepim+repose_lmo.json \
    DeepIM+RGB-LM=benchmarks/results/deepim+rgb_lm_lmo.json "DeepIM x7=benchmarks/results/deepim_lmo_hyp7.json" \
    "DeepIM+RGB-LM x7=benchmarks/results/deepim+rgb_lm_lmo_hyp7.json" \
    "DeepIM+RGB-LM x7 scorer=benchmarks/results/deepim+rgb_lm_lmo_hyp7_scorer.json" \
    "Ensemble=benchmarks/results/rgb_lm_or_deepim_or_deepim+rgb_lm_lmo.json"
$PY benchmarks/bench_methods_speed.py --methods rgb-lm repose deepim deepim+repose deepim+rgb-lm \
    --weights repose=$R deepim=$D --threads 2 --rounds 3 --repeats 5 --out benchmarks/bench_objects.png
$PY benchmarks/bench_methods_speed.py --methods rgb-lm deepim deepim+rgb-lm rgb-lm,deepim,deepim+rgb-lm \
    --weights deepim=$D --threads 2 --tag ensemble --out benchmarks/bench_objects_ensemble.png
$PY benchmarks/bench_basin_synthetic.py --methods rgb-lm repose deepim deepim+repose deepim+rgb-lm \
    --weights repose=$R deepim=$D --per-object 2 --threads 2
$PY benchmarks/bench_basin_real.py --methods rgb-lm repose deepim deepim+rgb-lm \
    --weights repose=$R deepim=$D --threads 2
$PY benchmarks/bench_basin_real.py --methods rgb-lm,deepim,deepim+rgb-lm --weights deepim=$D --threads 2 \
    --previous benchmarks/results/basin_real.json --tag ensemble
$PY benchmarks/bench_basin_real.py --methods deepim+rgb-lm --hypotheses 7 --weights deepim=$C --threads 2 \
    --previous benchmarks/results/basin_real.json --tag hyp7
# ... ranked by the scorer (the 15-30 deg levels with seed 3: the same draws as the full run's levels 4-6)
$PY benchmarks/bench_basin_real.py --methods deepim+rgb-lm --hypotheses 7 --scorer $S --weights deepim=$C \
    --levels 2.5 5 10 --threads 2 --previous benchmarks/results/basin_real_hyp7.json --tag hyp7_scorer
$PY benchmarks/bench_basin_real.py --methods deepim+rgb-lm --hypotheses 7 --scorer $S --weights deepim=$C \
    --levels 15 20 30 --seed 3 --threads 2 --tag hyp7_scorer_15up
# training curves of the run directories, where they exist
for pair in lmo-deepim:lmo_deepim lmo-deepim-it2:lmo_deepim_phase2 lmo-deepim-anneal:lmo_deepim_phase3 \
    lmo-repose-anneal:lmo_repose_phase4 example-deepim:example_deepim s9-fine:lmo_deepim_phase7 \
    lmo-repose-fine:lmo_repose_phase3 s12-aux:lmo_deepim_phase10 s12-focus:lmo_deepim_phase11 \
    s13-long:lmo_deepim_phase12 s13-sharp:lmo_deepim_phase13; do
    run=${pair%%:*}
    if [ -f "$HOME/runs/$run/metrics.jsonl" ]; then
        $PY benchmarks/plot_training.py "$HOME/runs/$run" --out "benchmarks/training_${pair##*:}.png" --window 20
    fi
done
