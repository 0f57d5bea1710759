#!/usr/bin/env bash
# One call on a lent GPU machine: the end-to-end tests on CUDA, then the GPU benchmark.
# Usage (from the repo root, venv carried along): bash scripts/gpu_check.sh [CORPUS]
# CORPUS defaults to the shipped sample; carry a larger subset (<= 64 MiB) for real figures.
set -uo pipefail
corpus=${1:-data/sotu.txt.gz}
py=${PYTHON:-python}
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
W2V_TEST_DEVICE=cuda $py -m pytest -q tests/test_train.py tests/test_model.py tests/test_sampling.py 2>&1 | tail -15
for arch in skipgram cbow; do
  for bs in 4096 65536; do
    $py -m w2v.train --config configs/default.yaml --quiet --set corpus.paths="$corpus" \
      --set model.arch=$arch --set train.device=cuda --set train.batch_size=$bs \
      --set output.dir="${OUT:-/tmp}/gpu_${arch}_$bs" --set train.epochs=3
    $py - "$arch" "$bs" "${OUT:-/tmp}/gpu_${arch}_$bs" <<'PY'
import json, sys
from w2v.evaluate import Embedding, evaluate_all
arch, bs, out = sys.argv[1:]
m = json.load(open(f"{out}/metrics.json"))["epochs"]
r = evaluate_all(Embedding.load(f"{out}/word_embedding.txt"))
print(f"{arch} batch {bs}: {max(e['words_per_sec'] for e in m):,.0f} words/s  ws353 {r['wordsim353']['spearman']:.3f} "
      f"simlex {r['simlex999']['spearman']:.3f} analogy {r['analogy_3cosadd']['total']['accuracy']}")
PY
  done
done
