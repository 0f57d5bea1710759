#!/usr/bin/env bash
# One call on a GPU machine: the tests on CUDA, then the GPU benchmarks (w2v only: gensim has
# no GPU mode): steady-state words/s of the fused kernels, the whole process from text to vectors
# against its training seconds, the subword model on Triton, and the text stage on 1-16 CPU
# threads. Usage, from the repository root:
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
echo "== fused (Triton) kernels, skip-gram (the GPU default: a noise draw per pair) and CBOW, median of $runs runs"
timeout 300 $bench --arch skipgram cbow --runs "$runs" --backend fused --json "$out/gpu_fused.json"
echo "== fused, skip-gram with a window's noise shared (the CPU default), to confirm the GPU default"
timeout 120 $bench --arch skipgram --runs 1 --backend fused --set model.shared_negatives=true \
  --json "$out/gpu_fused_shared.json"
echo "== the batched PyTorch step (train.backend=torch), for comparison"
timeout 180 $bench --arch skipgram --runs 1 --backend torch --json "$out/gpu_torch.json"

echo "== from text to word_embedding.txt on the GPU: the whole process, cold cache, against its training seconds"
timeout 240 $py scripts/bench_end_to_end.py --corpus "$corpus" --device cuda --epochs 5 --runs 1 \
  --json "$out/gpu_end_to_end.json"
echo "== the same with a window's noise shared (skip-gram), against the per-pair default"
timeout 120 $py scripts/bench_end_to_end.py --corpus "$corpus" --device cuda --epochs 5 --runs 1 --arch skipgram \
  --set model.shared_negatives=true --json "$out/gpu_end_to_end_shared.json"
echo "== the subword model (fastText's settings) on the Triton kernel"
timeout 240 $py scripts/bench_subwords.py --corpus "$corpus" --tools w2v --device cuda --epochs 5 --runs 1 \
  --json "$out/gpu_subwords.json"
echo "== the text stage on this machine's cores: 1 to 16 threads (the corpus 4 times, w2v rows only)"
timeout 240 $py scripts/bench_prepare.py --corpus "$corpus" --repeat 4 --work /tmp/gpu_prepare --runs 1 \
  --slow-runs 0 --threads 1 2 4 8 16 --json "$out/cpu_prepare_threads.json"
