#!/usr/bin/env bash
# GPU smoke check (issue 12): under 8 minutes on one GPU. Run from the repository root on the
# device machine; figures go to stdout and to $OUT/gpu_smoke.json when $OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
timeout 460 python benchmarks/gpu_smoke.py --device "${DEVICE:-cuda}" --budget 5 ${OUT:+--out "$OUT"}
