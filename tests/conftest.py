"""Test set-up shared by every test file: torchvision imported through the workaround in
tinyinfer/bench/_torch.py (its CUDA-built extension does not load here), torch on 2 threads."""
import numpy as np
import pytest

from tinyinfer.bench._torch import import_torchvision

import_torchvision()

import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
