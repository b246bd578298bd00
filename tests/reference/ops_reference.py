#!/usr/bin/env python3
"""PyTorch reference values for the CPU ops (kernels/cpu), for tests/test_cpu_ops.cpp.

Usage:
    ops_reference.py --out DIR [--seed 1234] [--ops encoder,layernorm,...]
                     [--B 2] [--T 16] [--C 48] [--NH 4] [--V 77] [--Vp 128] [--maxT 24]

Writes DIR/<op>.bin for each op: random fp32 inputs, and the outputs and gradients computed by
torch autograd in float64 from those (fp32-rounded) inputs, stored as float32. Ops:
encoder, layernorm, matmul, matmul_big, attention, gelu, residual, classifier, adamw, global_norm.

Gradient buffers that our kernels ACCUMULATE into (parameter gradients, and layernorm's dinp)
come with a random "<name>_init" array; the expected "<name>" is init + gradient.

File format (little-endian), shared with tests/reference/gpt2_reference.py and read by
tests/reference_file.h:
    magic   8 bytes  b"GPT2REF1"
    count   uint32   number of arrays
    then per array:
      name_len uint32, name bytes (UTF-8, no terminator)
      dtype    uint32  0 = float32, 1 = int32
      ndim     uint32, dims int64[ndim]
      data     prod(dims) * 4 bytes, row-major
"""
import argparse
import math
import os
import struct
import sys

import numpy as np
import torch

MAGIC = b"GPT2REF1"


def write_ref(path, arrays):
    """arrays: list of (name, np.ndarray float32 or int32)."""
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(a)
            if a.dtype == np.float32:
                code = 0
            elif a.dtype == np.int32:
                code = 1
            else:
                raise TypeError(f"{name}: unsupported dtype {a.dtype}")
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<II", code, a.ndim))
            f.write(struct.pack(f"<{a.ndim}q", *a.shape))
            f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy().copy()  # copy: never alias a live tensor


class Gen:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, *shape, scale=1.0, shift=0.0):
        # Drawn in float32 so the values written are exactly the values used here (as float64).
        x = torch.randn(*shape, generator=self.g, dtype=torch.float32) * scale + shift
        return x.to(torch.float64)

    def randint(self, lo, hi, *shape):
        return torch.randint(lo, hi, shape, generator=self.g, dtype=torch.int64)


def leaf(x):
    return x.clone().requires_grad_(True)


def op_encoder(g, a):
    B, T, C, Vp, V, maxT = a.B, a.T, a.C, a.Vp, a.V, a.maxT
    tokens = g.randint(0, V, B, T)
    tokens[0, 1] = tokens[0, 0]  # a repeated token: its gradient rows must add up
    wte, wpe = leaf(g.randn(Vp, C)), leaf(g.randn(maxT, C))
    out = wte[tokens] + wpe[:T].unsqueeze(0)
    dout = g.randn(B, T, C)
    out.backward(dout)
    dwte_init, dwpe_init = g.randn(Vp, C), g.randn(maxT, C)
    return [("tokens", tokens.to(torch.int32).numpy()), ("wte", f32(wte)), ("wpe", f32(wpe)),
            ("dout", f32(dout)), ("out", f32(out)),
            ("dwte_init", f32(dwte_init)), ("dwte", f32(dwte_init + wte.grad)),
            ("dwpe_init", f32(dwpe_init)), ("dwpe", f32(dwpe_init + wpe.grad))]


def op_layernorm(g, a):
    B, T, C = a.B, a.T, a.C
    x = leaf(g.randn(B, T, C, scale=2.0, shift=0.5))
    w, b = leaf(g.randn(C, scale=0.5, shift=1.0)), leaf(g.randn(C, scale=0.5))
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + 1e-5)
    out = torch.nn.functional.layer_norm(x, (C,), w, b, eps=1e-5)
    dout = g.randn(B, T, C)
    out.backward(dout)
    dinp_init, dw_init, db_init = g.randn(B, T, C), g.randn(C), g.randn(C)
    return [("inp", f32(x)), ("weight", f32(w)), ("bias", f32(b)), ("dout", f32(dout)),
            ("out", f32(out)), ("mean", f32(mean.reshape(B * T))), ("rstd", f32(rstd.reshape(B * T))),
            ("dinp_init", f32(dinp_init)), ("dinp", f32(dinp_init + x.grad)),
            ("dweight_init", f32(dw_init)), ("dweight", f32(dw_init + w.grad)),
            ("dbias_init", f32(db_init)), ("dbias", f32(db_init + b.grad))]


def matmul_case(g, N, C, OC):
    x = leaf(g.randn(N, C))
    w = leaf(g.randn(OC, C, scale=1.0 / math.sqrt(C)))
    b = leaf(g.randn(OC))
    out = torch.nn.functional.linear(x, w, b)
    dout = g.randn(N, OC)
    out.backward(dout)
    dw_init, db_init = g.randn(OC, C), g.randn(OC)
    return [("inp", f32(x)), ("weight", f32(w)), ("bias", f32(b)), ("dout", f32(dout)),
            ("out", f32(out)), ("dinp", f32(x.grad)),
            ("dweight_init", f32(dw_init)), ("dweight", f32(dw_init + w.grad)),
            ("dbias_init", f32(db_init)), ("dbias", f32(db_init + b.grad))]


def op_matmul(g, a):
    # Ragged sizes: partial register tiles in every dimension.
    return matmul_case(g, a.B * a.T + 5, a.C + 7, 3 * a.C - 5)


def op_matmul_big(g, a):
    # Larger than one cache block in every dimension (K > KC, N > NC, several row blocks),
    # for forward (K = C) and for dinp (K = OC).
    return matmul_case(g, 419, 405, 517)


def op_attention(g, a):
    B, T, C, NH = a.B, a.T, a.C, a.NH
    HS = C // NH
    qkv = leaf(g.randn(B, T, 3 * C))
    q, k, v = qkv.split(C, dim=2)
    q = q.view(B, T, NH, HS).transpose(1, 2)
    k = k.view(B, T, NH, HS).transpose(1, 2)
    v = v.view(B, T, NH, HS).transpose(1, 2)
    s = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # (B, NH, T)
    y = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).contiguous().view(B, T, C)
    dy = g.randn(B, T, C)
    y.backward(dy)
    return [("qkv", f32(qkv)), ("dy", f32(dy)), ("y", f32(y)), ("lse", f32(lse)),
            ("dqkv", f32(qkv.grad))]


def op_gelu(g, a):
    x = leaf(g.randn(a.B, a.T, 4 * a.C, scale=2.0))
    out = torch.nn.functional.gelu(x, approximate="tanh")
    dout = g.randn(a.B, a.T, 4 * a.C)
    out.backward(dout)
    return [("inp", f32(x)), ("dout", f32(dout)), ("out", f32(out)), ("dinp", f32(x.grad))]


def op_residual(g, a):
    x, y = leaf(g.randn(a.B, a.T, a.C)), leaf(g.randn(a.B, a.T, a.C))
    out = x + y
    dout = g.randn(a.B, a.T, a.C)
    out.backward(dout)
    return [("a", f32(x)), ("b", f32(y)), ("dout", f32(dout)), ("out", f32(out)),
            ("da", f32(x.grad)), ("db", f32(y.grad))]


def op_classifier(g, a):
    N, V, Vp = a.B * a.T, a.V, a.Vp
    logits = g.randn(N, Vp, scale=3.0)
    targets = g.randint(0, V, N)
    targets[0] = V - 1  # the last real column
    scale = 1.0 / (2 * N)  # as if this chunk were half of the step's tokens
    real = leaf(logits[:, :V])
    losses = torch.nn.functional.cross_entropy(real, targets, reduction="none")
    (losses.sum() * scale).backward()
    dlogits = torch.zeros(N, Vp, dtype=torch.float64)
    dlogits[:, :V] = real.grad
    return [("logits", f32(logits)), ("targets", targets.to(torch.int32).numpy()),
            ("dloss_scale", np.array([scale], dtype=np.float32)),
            ("losses", f32(losses)), ("dlogits", f32(dlogits))]


def op_adamw(g, a):
    # Two tensors: a 2-D weight (decayed) and a bias (not decayed), three steps, clipping scale.
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.95, 1e-8, 0.1
    w0, b0 = g.randn(a.C, a.C), g.randn(a.C)
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = torch.optim.AdamW([{"params": [w], "weight_decay": wd},
                             {"params": [b], "weight_decay": 0.0}],
                            lr=lr, betas=(b1, b2), eps=eps)
    out = [("hyper", np.array([lr, b1, b2, eps, wd], dtype=np.float32)),
           ("w0", f32(w0)), ("b0", f32(b0))]
    for step in range(1, 4):
        gw, gb = g.randn(a.C, a.C), g.randn(a.C)
        gscale = float(np.float32([1.0, 0.5, 0.25][step - 1]))
        w.grad, b.grad = gw * gscale, gb * gscale
        opt.step()
        out += [(f"gw{step}", f32(gw)), (f"gb{step}", f32(gb)),
                (f"gscale{step}", np.array([gscale], dtype=np.float32)),
                (f"w{step}", f32(w)), (f"b{step}", f32(b)),
                (f"mw{step}", f32(opt.state[w]["exp_avg"])),
                (f"vw{step}", f32(opt.state[w]["exp_avg_sq"]))]
    return out


def op_global_norm(g, a):
    x = g.randn(100003, scale=0.1)
    return [("x", f32(x)), ("norm_sq", np.array([float((x * x).sum())], dtype=np.float32))]


OPS = {"encoder": op_encoder, "layernorm": op_layernorm, "matmul": op_matmul,
       "matmul_big": op_matmul_big, "attention": op_attention, "gelu": op_gelu,
       "residual": op_residual, "classifier": op_classifier, "adamw": op_adamw,
       "global_norm": op_global_norm}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--B", type=int, default=2)
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--C", type=int, default=48)
    p.add_argument("--NH", type=int, default=4)
    p.add_argument("--V", type=int, default=77)
    p.add_argument("--Vp", type=int, default=128)
    p.add_argument("--maxT", type=int, default=24)
    a = p.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    for i, name in enumerate(a.ops.split(",")):
        if name not in OPS:
            sys.exit(f"unknown op {name!r}; known: {', '.join(OPS)}")
        arrays = OPS[name](Gen(a.seed + i), a)
        shapes = np.array([a.B, a.T, a.C, a.NH, a.V, a.Vp, a.maxT], dtype=np.int32)
        write_ref(os.path.join(a.out, name + ".bin"), [("config_B_T_C_NH_V_Vp_maxT", shapes)] + arrays)
    print(f"wrote {len(a.ops.split(','))} op reference files to {a.out}")


if __name__ == "__main__":
    main()
