"""tinyinfer's emulation of each counting tool (conventions.py) vs the tool itself, run on
the torchvision reference of the same network: every number must be equal, exactly.
(The tools count integers from shapes, as we do, so there is nothing to round: any
difference is a rule we got wrong.)

The models cover the rules that differ between tools: mobilenet_v2 (ReLU6 modules, BN, a
functional global pool), resnet18 (nn.ReLU modules called several times, max pool, pool
module), mobilenet_v3_large (squeeze-excite with biased 1x1 convs, h-swish, h-sigmoid) and
googlenet (F.relu called as a function, concat, many pools). Batch 2 at an odd resolution
checks that nothing assumes batch 1 or 224.
"""
import contextlib
import io
import logging
import warnings

import pytest
import torch
import torchvision
from fvcore.nn import FlopCountAnalysis
from ptflops import get_model_complexity_info
from torch.utils.flop_counter import FlopCounterMode

import thop
import tinyinfer
from tinyinfer.analysis.conventions import CONVENTIONS, by_class, compare, count, get_convention
from tinyinfer.errors import InputError


def run_tools(module: torch.nn.Module, shape) -> dict:
    """Each tool's own total for ``module`` on a zero input of ``shape`` (N, C, H, W), on one
    torch thread: the tools run the network five times, and on this busy 2-core machine two
    threads took 8x as long (mobileone_s0: 72 s vs 9 s at load average 6)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_tools(module, torch.zeros(*shape))
    finally:
        torch.set_num_threads(threads)


def _run_tools(module, x) -> dict:
    shape = tuple(x.shape)
    out = {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)          # fvcore logs every unsupported op
        try:
            fa = FlopCountAnalysis(module, x)
            fa.unsupported_ops_warnings(False)
            fa.uncalled_modules_warnings(False)
            out["fvcore"] = fa.total()
        finally:
            logging.disable(logging.NOTSET)
        out["thop"] = thop.profile(module, (x,), verbose=False)[0]
        # ptflops reports per image and divides only its module hooks by the batch (not
        # the F.* calls it patches): its number is well defined at batch 1 only
        backends = (("pytorch", "ptflops"), ("aten", "ptflops_aten")) if shape[0] == 1 else ()
        for backend, name in backends:
            out[name] = get_model_complexity_info(
                module, tuple(shape[1:]), input_constructor=lambda _: x, as_strings=False,
                print_per_layer_stat=False, backend=backend)[0]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    out["torch"] = counter.get_total_flops()
    return out


# googlenet without its auxiliary heads: they hold parameters but do not run in eval mode
CASES = [("mobilenet_v2", (1, 3, 224, 224)), ("resnet18", (1, 3, 224, 224)),
         ("mobilenet_v3_large", (1, 3, 224, 224)), ("googlenet", (1, 3, 224, 224)),
         ("mobilenet_v3_large", (2, 3, 129, 129))]
KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False}}


@pytest.mark.parametrize("name,shape", CASES)
def test_emulation_equals_tool(name, shape):
    reference = getattr(torchvision.models, name)(**KWARGS.get(name, {})).eval()
    tools = run_tools(reference, shape)
    ours = tinyinfer.load(name, weights=None)
    torch_params = sum(p.numel() for p in reference.parameters())
    for tool, theirs in tools.items():
        counted = count(ours, tool, shape)
        assert counted.total == int(theirs), f"{name} {shape} {tool}: {counted.total} vs {theirs}"
        assert counted.params == torch_params, tool


# timm writes the same kinds of network differently (conventions.py's docstring): BN as
# BatchNormAct2d, TF-"same" strided convs as Conv2dSame, MobileNetV3's classifier as timm's
# Linear (subclasses thop and ptflops have no rule for), SE's pool as x.mean. One network
# for each: MobileNetV3 (BN, SE, Linear), the tf_ EfficientNet port (Conv2dSame, SiLU),
# RegNetY (SE in a ResNet-like block).
TIMM_CASES = ["mobilenetv3_large_100", "tf_efficientnet_b0", "regnety_002"]


@pytest.mark.parametrize("name", TIMM_CASES)
def test_emulation_equals_tool_on_timm_models(name):
    import timm
    reference = timm.create_model(name).eval()
    shape = (1, 3, 224, 224)
    ours = tinyinfer.load(name, weights=None)
    for tool, theirs in run_tools(reference, shape).items():
        counted = count(ours, tool, shape)
        assert counted.total == int(theirs), f"{name} {tool}: {counted.total} vs {theirs}"
    assert counted.params == sum(p.numel() for p in reference.parameters())


def test_the_tools_disagree_and_we_say_why():
    """On one network the conventions span a factor of two; each difference is one rule.
    Expected values from mobilenet_v2's architecture table, written out below."""
    conv, bn_channels, bn_elements = _mobilenet_v2_closed_form()
    fc = 1280 * 1000
    res = compare(tinyinfer.load("mobilenet_v2", weights=None), (1, 3, 224, 224))
    assert res["paper"].total == res["macs"].total == conv + fc
    assert res["torch"].total == 2 * (conv + fc)                    # a MAC is 2 FLOPs
    assert res["fvcore"].total == conv + fc + 2 * bn_elements + 1280 * 7 * 7
    assert res["thop"].total == conv + fc + 4 * bn_elements         # its pool is a function
    classes = by_class(res["thop"])
    assert classes["batchnorm"] == 4 * bn_elements and classes["activation"] == 0
    # parameters: a folded BN is 1 bias per channel, PyTorch's BN is weight + bias
    assert res["macs"].params - res["paper"].params == bn_channels


def _mobilenet_v2_closed_form():
    """(conv MACs, BN channels, BN elements) of MobileNetV2 at 224 from its table."""
    macs, channels, elements = 3 * 32 * 9 * 112 * 112, 32, 32 * 112 * 112     # stem
    size, cin = 112, 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            mid = cin * t
            if t != 1:                                   # 1x1 expansion + BN
                macs += cin * mid * size * size
                channels, elements = channels + mid, elements + mid * size * size
            size //= s if i == 0 else 1                  # 3x3 depthwise + BN
            macs += 9 * mid * size * size
            channels, elements = channels + mid, elements + mid * size * size
            macs += mid * c * size * size                # 1x1 projection + BN
            channels, elements = channels + c, elements + c * size * size
            cin = c
    macs += 320 * 1280 * 7 * 7                           # head 1x1 + BN
    return macs, channels + 1280, elements + 1280 * 7 * 7


def test_report_column_and_unknown_convention():
    model = tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.5)
    rep = model.summary(resolution=96, convention="thop")
    assert rep.columns[-1] == CONVENTIONS["thop"].unit
    assert sum(r.count for r in rep.rows) == rep.count == count(model, "thop", (1, 3, 96, 96)).total
    assert rep.table()[-1][-1] == rep.count
    with pytest.raises(InputError, match="unknown counting convention 'fvcor'.*fvcore"):
        get_convention("fvcor")
    with pytest.raises(InputError, match="unknown counting convention"):
        model.summary(convention="flop")
