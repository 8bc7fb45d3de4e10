"""Every registered network vs its PyTorch reference (torchvision, timm, ...): random
weights and randomized norm statistics, at the cases tests/reference_registry.py lists for
it (native resolution at batch 1, an odd resolution at batch 3), with the one tolerance of
torch_ref.assert_matches: max|ours - ref| <= 1e-3 * max|ref| over the logits. A guard test
fails when a registered network has no reference there.

The specialised checks of each family (other checkpoint layouts, block grammar, key maps)
are in test_mbconv_family.py and test_group_family.py.
"""
import pytest

import tinyinfer
from reference_registry import NO_REFERENCE, REFERENCES, reference
from torch_ref import assert_matches, check_network, forward, image_batch, state_dict_numpy

CASES = [(name, batch, resolution) for name, ref in REFERENCES.items()
         for batch, resolution in ref.cases]

_LOADED = {}


def reference_and_model(name, resolution):
    """The randomized reference and tinyinfer loaded with its weights, built once and shared
    by a network's cases (only the last pair is kept: VGG16 alone is 0.5 GB)."""
    key = (name, resolution if REFERENCES[name].sized else None)
    if key not in _LOADED:
        _LOADED.clear()
        ref = reference(name, resolution)
        _LOADED[key] = ref, tinyinfer.load(name, weights=state_dict_numpy(ref))
    return _LOADED[key]


@pytest.mark.parametrize("name,batch,resolution", CASES,
                         ids=[f"{n}-b{b}-{r}" for n, b, r in CASES])
def test_network_matches_reference(name, batch, resolution):
    ref, model = reference_and_model(name, resolution)
    x = image_batch(batch, resolution, seed=resolution)
    want = forward(ref, x)
    assert want.shape == (batch, 1000)
    assert_matches(model(x), want, f"{name} @{batch}x{resolution}")


def test_every_registered_model_has_a_reference():
    """A model file registering a network without a reference would go untested."""
    registered = set(tinyinfer.list_models())
    untested = registered - set(REFERENCES) - set(NO_REFERENCE)
    assert not untested, (f"no parity reference for {sorted(untested)}: add one to "
                          f"tests/reference_registry.py REFERENCES, or say in NO_REFERENCE "
                          f"why it cannot have one")
    assert not (set(REFERENCES) | set(NO_REFERENCE)) - registered, "entries for unknown names"
    assert not set(REFERENCES) & set(NO_REFERENCE), "a name both tested and excused"
    assert all(reason.strip() for reason in NO_REFERENCE.values())


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.4])
def test_mobilenet_v2_widths(width):
    check_network("mobilenet_v2", reference("mobilenet_v2", seed=1, width_mult=width), 1, 160,
                  seed=1, width_mult=width)


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75])
def test_mobilenet_v1_widths(width):
    check_network("mobilenetv1_100", reference("mobilenetv1_100", seed=2, width_mult=width),
                  2, 128, seed=2, width_mult=width)


def test_timm_layout_loads_into_torchvision_named_model():
    """torchvision's and timm's MobileNetV2 checkpoints both import into mobilenet_v2."""
    model = check_network("mobilenet_v2", reference("mobilenetv2_100", seed=3), 1, 96, seed=3)
    assert "timm" in model.weights_source
