"""NDT's inference captured in a CUDA graph against eager CUDA and against the CPU, one attention kernel at
a time (issue 20).

The first GPU run found NDT's "fp32 cuda graph" latency variant off eager by max |Δ| 0.489 on the tiny
models (6 and 14 bins) and equal at the MC_Maze size; the latency study now leaves such a variant out,
but the cause was not found without a GPU. This test says which of the two is wrong, by comparing both
with the same weights run in float64 on the CPU, and under which of torch's attention kernels
(`sdpa_kernel` pins one: the default choice depends on the GPU, the head size and the mask), at batch 1
(the latency study's per-trial call) and 4, and with the local-attention mask laid out three ways, so
that one GPU run names the cause. The tiny NDT's heads are 4 wide, which the memory-efficient kernel
takes in fp32, while the MC_Maze preset's 91-wide heads leave only the math kernel: a suspect for why
only the tiny models differed. That kernel wants the mask's rows 16-aligned and pads a copy otherwise,
and it reads the one bins × bins mask broadcast (stride 0) over trials and heads; the layouts take
those two steps away one at a time.
"""

import contextlib

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from latentdyn.data.prepare import DataShapes
from latentdyn.metrics.latency import FORWARD_BINS_PER_BIN, make_runner, random_counts
from latentdyn.metrics.latency_goal import SAME_RATES_TOLERANCE
from latentdyn.models.kinds import get_kind
from test_latency import tiny_models

KERNELS = {
    "torch's choice": None,
    "math": SDPBackend.MATH,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}


MASK_ALIGNMENT = 16  # the memory-efficient kernel's row alignment for an attention mask


def ndt_at(bins, trials):
    """The latency study's tiny NDT at `bins` (seeded weights), its kind's implementation, and `trials`
    trials of counts."""
    params = tiny_models()["ndt_small"]
    implementation = get_kind(params["kind"]).implementation()
    shapes = DataShapes(5, 3, bins, round(bins * FORWARD_BINS_PER_BIN))
    torch.manual_seed(0)
    model = implementation.build(params, shapes).eval()
    return model, implementation, random_counts(trials, shapes, torch.device("cpu"))


def mask_layouts(mask, trials, heads):
    """The same additive mask as the model builds it, with 16-aligned rows (nothing for the kernel to
    pad), and materialised per trial and head as well (nothing broadcast)."""
    tokens = mask.shape[-1]
    aligned = torch.zeros(tokens, -(-tokens // MASK_ALIGNMENT) * MASK_ALIGNMENT, device=mask.device)
    aligned[:, :tokens] = mask
    per_head = torch.zeros(trials, heads, tokens, aligned.shape[-1], device=mask.device)
    per_head[..., :tokens] = mask
    return {"as built": mask, "aligned rows": aligned[:, :tokens], "aligned, per head": per_head[..., :tokens]}


def test_ndt_rates_graphed_and_eager_on_cuda_equal_the_cpu_rates_under_every_attention_kernel():
    failures, table = [], []
    ran = 0
    for bins in (6, 14):
        for trials in (1, 4):
            model, implementation, inputs = ndt_at(bins, trials)
            with torch.inference_mode():
                expected = implementation.infer_rates(model.double(), inputs.double()).float()
            model.float().cuda()
            heads = model.encoder.layers[0].attention.heads

            def rates(encoder_input):
                return implementation.infer_rates(model, encoder_input)

            for layout, mask in mask_layouts(model.encoder.mask, trials, heads).items():
                model.encoder.mask = mask
                for kernel, backend in KERNELS.items():
                    case = f"{bins:3d} bins  batch {trials}  {layout:17s} {kernel:15s}"
                    with sdpa_kernel(backend) if backend is not None else contextlib.nullcontext():
                        try:
                            with torch.inference_mode():
                                eager = rates(inputs.cuda()).cpu()
                            graphed = make_runner("graph", None, rates, inputs.cuda())().cpu()
                        except RuntimeError as error:  # this kernel does not take these shapes: say so
                            table.append(f"{case} not available: {str(error).splitlines()[0][:80]}")
                            continue
                    ran += 1
                    eager_error = (eager - expected).abs().max().item()
                    graph_error = (graphed - expected).abs().max().item()
                    table.append(f"{case} |eager − CPU| {eager_error:.2e}  |graph − CPU| {graph_error:.2e}")
                    if not max(eager_error, graph_error) <= SAME_RATES_TOLERANCE:
                        failures.append(case.strip())
    print("\n".join(table))
    assert ran >= 2 and not failures, f"off the CPU rates: {failures}\n" + "\n".join(table)
