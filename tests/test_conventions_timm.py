"""The counting tools' emulations (conventions.py) vs the tools themselves on the
timm-written families and EdgeViT: one small network of each, at its native size and batch 1,
plus odd sizes where the reference does something the native size does not. Every number
must be equal, exactly (the tools count integers from shapes).

What each case exercises (how the reference writes a layer, REFERENCE_CALLS):
  ghostnet_050       nn.BatchNorm2d except one BatchNormAct2d (a "key@node" call), SE's
                     x.mean, timm's Linear classifier
  legacy_seresnet18  timm's port of the SENet authors' models: SE's x.mean
  mobileone_s0       every BN a BatchNormAct2d (the training form, seven branches a block)
  efficientvit_m0    cascaded group attention's matmuls, SE's x.mean, BatchNorm1d head; at
                     225 the windows pad and timm projects the padding too
  efficientvit_b0    ReLU linear attention's matmuls, nn.LayerNorm in the head
  mobilevit_xxs      fused SDPA inside timm's Attention (ptflops' own rule), BatchNormAct2d,
                     nn.LayerNorm; at 129 (batch 2) F.interpolate around every patch unfold
  mobilevitv2_050    GroupNorm1, separable attention's F.softmax, and at 224 (not its
                     native 256) the last block's resize of 7x7 to 8x8 (F.interpolate,
                     which ptflops and fvcore count)
  edgevit_xxs        the authors' q @ k^T (aten bmm), a depthwise ConvTranspose2d (thop's
                     forward-conv formula), qkv Linears on a transposed view (ptflops' aten
                     backend drops their bias)
ptflops is run at batch 1 only (test_conventions.run_tools says why).
"""
import logging

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

import tinyinfer
from reference_registry import reference
from test_conventions import run_tools
from tinyinfer.analysis.conventions import PTFLOPS_BATCH, QUIRKS, count

# mobileone_s0's training form is 1.05 GMACs at 224 (seven branches a block): 128 has the
# same layers at a third of the time
CASES = [("ghostnet_050", (1, 3, 224, 224)), ("legacy_seresnet18", (1, 3, 224, 224)),
         ("mobileone_s0", (1, 3, 128, 128)), ("efficientvit_m0", (1, 3, 224, 224)),
         ("efficientvit_m0", (1, 3, 225, 225)), ("efficientvit_b0", (1, 3, 224, 224)),
         ("mobilevit_xxs", (1, 3, 256, 256)), ("mobilevit_xxs", (2, 3, 129, 129)),
         ("mobilevitv2_050", (1, 3, 224, 224)), ("edgevit_xxs", (1, 3, 224, 224))]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """As in run_tools: the tools' forwards on one thread (two are many times slower on
    this busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name,shape", CASES, ids=[f"{n}-{s[0]}x{s[2]}" for n, s in CASES])
def test_emulation_equals_tool(name, shape):
    module = reference(name, shape[2])
    ours = tinyinfer.load(name, weights=None)
    tools = run_tools(module, shape)
    assert len(tools) == (5 if shape[0] == 1 else 3)
    for tool, theirs in tools.items():
        counted = count(ours, tool, shape)
        assert counted.total == int(theirs), f"{name} {shape} {tool}: {counted.total} vs {theirs}"
    assert counted.params == sum(p.numel() for p in module.parameters())


# MobileViT-XXS at 256 (the paper's Table 4 / timm's cfg): transformers on 32x32 (d=64, 2
# layers), 16x16 (d=80, 4) and 8x8 (d=96, 3) maps, 2x2 patches: 4 sequences of N = (H/2)^2
# tokens each; q k^T and attn v are N*N*d MACs each per sequence.
MOBILEVIT_XXS_ATTENTION = sum(2 * 4 * n * n * d * layers for n, d, layers in
                              ((256, 64, 2), (64, 80, 4), (16, 96, 3)))


def test_notes_say_which_layers_a_tool_ignores():
    model = tinyinfer.load("mobilevit_xxs", weights=None)
    fvcore = count(model, "fvcore")
    assert MOBILEVIT_XXS_ATTENTION == 78_184_448
    assert (f"fvcore ignores sdpa (inside timm's Attention module): "
            f"{MOBILEVIT_XXS_ATTENTION:,} MACs") in fvcore.notes
    assert QUIRKS[("ptflops", "timm_attention")] in count(model, "ptflops").notes
    assert count(model, "paper").notes == []
    ghost = count(tinyinfer.load("ghostnet_050", weights=None), "thop").notes
    assert ghost[0].startswith("thop ignores linear (timm's subclass") \
        and ghost[0].endswith(f": {1280 * 1000:,} MACs")          # the 1280 -> 1000 classifier
    edge = tinyinfer.load("edgevit_xxs", weights=None)
    assert QUIRKS[("thop", "transposed")] in count(edge, "thop").notes
    assert QUIRKS[("ptflops_aten", "transposed_input")] in count(edge, "ptflops_aten").notes
    assert PTFLOPS_BATCH in count(edge, "ptflops", (2, 3, 224, 224)).notes
    assert PTFLOPS_BATCH not in count(edge, "ptflops").notes


def test_the_ignored_attention_is_what_fvcore_counts_when_timm_does_not_fuse_it():
    """The note's MACs are the tool's own: with timm's fused attention switched off (q @ k^T,
    attn @ v written out) fvcore counts exactly that many more."""
    module = reference("mobilevit_xxs", 256)
    x = torch.zeros(1, 3, 256, 256)
    fused = _fvcore(module, x)
    switched = [m for m in module.modules() if getattr(m, "fused_attn", False)]
    assert len(switched) == 2 + 4 + 3                   # one per transformer layer
    for m in switched:
        m.fused_attn = False
    assert _fvcore(module, x) - fused == MOBILEVIT_XXS_ATTENTION


def _fvcore(module, x) -> int:
    logging.disable(logging.WARNING)      # fvcore logs every op it has no handle for
    try:
        return FlopCountAnalysis(module, x).unsupported_ops_warnings(False).total()
    finally:
        logging.disable(logging.NOTSET)


def test_summary_prints_what_the_tool_leaves_out():
    """`tinyinfer summary NAME --convention thop` (and the notebook's HTML) end with the
    notes; tinyinfer's own conventions have none. thop sees nothing of timm's fused
    attention: MobileViT-XXS's 78,184,448 attention MACs (test_notes' arithmetic)."""
    model = tinyinfer.load("mobilevit_xxs", weights=None)
    rep = model.summary(convention="thop")
    text, page = str(rep), rep._repr_html_()
    assert "What this tool leaves out" in text and "78,184,448 MACs" in text
    assert all(n in text for n in rep.notes()) and "78,184,448 MACs" in page
    assert "leaves out" not in str(model.summary()) and model.summary().notes() == []
