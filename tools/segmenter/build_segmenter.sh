#!/usr/bin/env bash
# Train, export and evaluate models/tiny-clipseg, and regenerate the TypeScript parity fixtures.
#
#   bash tools/segmenter/build_segmenter.sh /tmp/seg [MINUTES]
#
# One CPU thread under nice (the build machine is shared); MINUTES of training (default 38).
set -euo pipefail
work=${1:?usage: build_segmenter.sh WORKDIR [MINUTES]}
minutes=${2:-38}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$work"
cd "$here"
nice -n 10 python train_segmenter.py --out "$work/tiny-clipseg.pt" --minutes "$minutes" | tee "$work/train.log"
python export_segmenter.py --checkpoint "$work/tiny-clipseg.pt" --out "$root/models/tiny-clipseg"
cd "$root"
python tools/segmenter/make_segmenter_fixtures.py --model models/tiny-clipseg --out test/fixtures/segmenter
npm run build --silent
node dist/bench/masks.js --seeds 3 > "$work/bench-masks.json"   # npm run bench:masks -- --seeds 3
python tools/segmenter/eval_segmenter.py --model models/tiny-clipseg --out models/tiny-clipseg/EVAL.md \
  --bench "$work/bench-masks.json" --command "bash tools/segmenter/build_segmenter.sh $work $minutes"

