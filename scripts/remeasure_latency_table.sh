#!/usr/bin/env bash
# Re-measure notebooks/latency_table.json (notebook 12, part 1) and re-execute the notebook.
# Run it on a quiet machine (load average well under 1): the table's entries and the whole-
# network checks are fastest-of-5 times, and on a busy machine they measure the scheduler
# (src/tinyinfer/analysis/latency_table.py, "Threads"). One Numba thread throughout: the
# entries and the checks must use the same count (the command refuses to mix them).
#
# A fresh table is written beside the old one and moved over it only when both steps have
# finished, so an interrupted run leaves the committed file as it was. The NetAdapt frontier
# (notebooks/netadapt_frontier.json, part 2) is kept; delete that file before running this
# to re-measure it too (the notebook does it then, on one thread), and update the "What the
# frontier shows" cell by hand.
#
# Time, with a warm Numba cache: about 6 minutes on a quiet machine (2026-12-02, load ~1:
# 1 min 54 s for the entries, 3 min 17 s for the checks, the notebook in seconds). A cold
# cache first compiles the kernels: add a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export NUMBA_NUM_THREADS=1
# every registered network (155 on 2026-12-02: 5,979 entries in 1 min 54 s, checks in 3 min 17 s, quiet)
MODELS=$(python -c "import tinyinfer; print(','.join(tinyinfer.list_models()))")
NEW=notebooks/latency_table.json.new
uptime
rm -f "$NEW"
tinyinfer latency-table --models "$MODELS" -o "$NEW"
tinyinfer latency-table --models "$MODELS" -o "$NEW" --check
mv "$NEW" notebooks/latency_table.json
jupyter nbconvert --to notebook --execute --inplace notebooks/12_latency_table_netadapt.ipynb
