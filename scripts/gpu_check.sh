#!/usr/bin/env bash
# One call on a GPU machine: the tests on CUDA, then the GPU benchmark (w2v only: gensim has
# no GPU mode). Usage, from the repository root:
#   bash scripts/gpu_check.sh [CORPUS] [RUNS]
# CORPUS defaults to the shipped sample; carry a larger one (the device takes <= 64 MiB, so a .gz)
# for real figures. Results land in $OUT (or /tmp/gpu_check) as JSON next to the printed tables.
set -uo pipefail
corpus=${1:-data/sotu.txt.gz}
runs=${2:-3}
py=${PYTHON:-python3}
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
$py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(0))"

echo "== the whole test suite, with the device-aware tests on CUDA"
W2V_TEST_DEVICE=cuda timeout 300 $py -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$out/tests.log" | tail -15

case $corpus in *.gz) gunzip -c "$corpus" > /tmp/gpu_corpus.txt; corpus=/tmp/gpu_corpus.txt;; esac
# The defaults throughout: train.chunk_tokens 0 (auto) takes 1M-token chunks on a GPU.
bench="$py scripts/bench.py --corpus $corpus --tools w2v --device cuda --epochs 5 --share-cache"
echo "== fused (Triton) kernels, skip-gram (shared noise) and CBOW, median of $runs runs"
timeout 300 $bench --arch skipgram cbow --runs "$runs" --backend fused --json "$out/gpu_fused.json"
echo "== fused, skip-gram with a noise draw per pair (word2vec.c's sampling)"
timeout 120 $bench --arch skipgram --runs 1 --backend fused --set model.shared_negatives=false \
  --json "$out/gpu_fused_pairs.json"
echo "== the batched PyTorch step (train.backend=torch), for comparison"
timeout 180 $bench --arch skipgram --runs 1 --backend torch --json "$out/gpu_torch.json"
