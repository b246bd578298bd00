#!/usr/bin/env python3
"""An independent GPT-2 in torch.nn, for the engine's end-to-end reference test.

It is written from the GPT-2 paper's architecture (pre-LN blocks, tied lm_head, tanh GELU), not
from the engine's code. It trains a tiny model for a few AdamW steps on one fixed batch and writes
everything the engine must reproduce.

Usage:
    gpt2_reference.py --out FILE [--seed 1337] [--dtype float64|float32] [--steps 5] [--lr 3e-3]
                      [--L 2] [--NH 4] [--C 64] [--V 250] [--Vp 256] [--maxT 64] [--B 4] [--T 32]
                      [--grad-accum 2] [--grad-clip 1.0] [--weight-decay 0.1]

Maths is done in --dtype (default float64: the reference is then "exact" for an fp32 engine);
everything is stored as float32 / int32.

Model: wte (Vp, C) — rows >= V are padding: they are initialised like the others, never indexed
by a token, and their logits are computed but EXCLUDED from the softmax (the loss uses logits
[..., :V]); lm_head is tied to wte. Initialisation (GPT-2): weights and embeddings N(0, 0.02),
the two residual projections (attn c_proj, mlp c_proj) N(0, 0.02/sqrt(2L)), biases 0, LayerNorm
gains 1 and biases 0, eps 1e-5.

Training: every step uses the same fixed batch of grad_accum micro-batches of (B, T) tokens. The
step's loss is the mean over all grad_accum*B*T tokens (each micro-batch's mean loss / grad_accum,
gradients accumulated). Then torch.nn.utils.clip_grad_norm_(params, grad_clip) — which scales by
grad_clip / (norm + 1e-6) when norm > grad_clip — and torch.optim.AdamW(lr, betas=(0.9, 0.95),
eps=1e-8) with weight decay on 2-D tensors only (wte, wpe and the four matmul weights; wte's
padding rows are decayed too). Constant lr, no warmup. The default lr (3e-3) makes the gradient
norm exceed 1.0 at every one of the 5 steps (printed), so clipping is exercised throughout.

Note for comparisons: the gradient of the KEY part of qkvb (qkvb[l, C:2C]) is mathematically zero
(softmax is invariant to adding q·b_k to every score of a row), so any engine's value is rounding
noise; after AdamW steps that noise moves those biases by up to ~1e-2*lr per step. Compare that
slice with an absolute tolerance, not a relative one.

How tight a comparison can be (measured: this script in float32 against float64): logits, loss,
every grad_/step1_grad_ tensor, train_losses, losses_after and grad_norms agree to <= 5e-6 relative
(max |a-b| / max |b| per tensor), so 1e-5 is a fair fp32 tolerance for them. The final_ weights
do NOT: AdamW turns rounding noise in near-zero gradients into full-size (±lr) updates, and torch
fp32 itself differs from fp64 by up to ~7e-4 relative (final_fcw) after 5 steps. Compare final_
weights with a tolerance of order lr * steps * 1e-1 absolute, or not at all.

Output file (format documented in tests/reference/ops_reference.py; read by
tests/reference_file.h). Arrays:
    config        int32 [maxT, V, L, NH, C, Vp, B, T, grad_accum, steps]   (first 6 = llm.c header order)
    hyper         float32 [lr, beta1, beta2, eps, weight_decay, grad_clip]
    tokens        int32 (grad_accum, B, T)     inputs of each micro-batch
    targets       int32 (grad_accum, B, T)     next tokens
    the 16 weights in llm.c order and layout, at initialisation:
        wte (Vp,C) wpe (maxT,C) ln1w (L,C) ln1b (L,C) qkvw (L,3C,C) qkvb (L,3C) attprojw (L,C,C)
        attprojb (L,C) ln2w (L,C) ln2b (L,C) fcw (L,4C,C) fcb (L,4C) fcprojw (L,C,4C) fcprojb (L,C)
        lnfw (C) lnfb (C)
    logits        (B, T, V)   micro-batch 0, initial weights (the V real columns only)
    loss          (1,)        micro-batch 0 mean loss, initial weights
    grad_<name>   16 arrays   gradient of `loss` (micro-batch 0 alone) w.r.t. each weight
    step1_grad_<name>  16 arrays  the accumulated gradient of step 1 (before clipping)
    train_losses  (steps,)    loss of step k (mean over the step's tokens) before its update
    grad_norms    (steps,)    global gradient norm of step k before clipping
    clip_coefs    (steps,)    the factor the gradients were multiplied by (1 when not clipped)
    losses_after  (steps,)    loss over the same batch evaluated after the k-th update
    final_<name>  16 arrays   weights after the last step
"""
import argparse
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_reference import write_ref  # noqa: E402  (the shared file writer)


class CausalSelfAttention(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.NH
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.NH, hs).transpose(1, 2)
        k = k.view(B, T, self.NH, hs).transpose(1, 2)
        v = v.view(B, T, self.NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C)
        self.c_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = CausalSelfAttention(C, NH)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = MLP(C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, L, NH, C, V, Vp, maxT):
        super().__init__()
        self.V = V
        self.wte = nn.Embedding(Vp, C)
        self.wpe = nn.Embedding(maxT, C)
        self.h = nn.ModuleList([Block(C, NH) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.L = L

    def init_weights(self, gen):
        std = 0.02
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith(".bias"):
                    p.zero_()
                elif "ln_" in name:  # LayerNorm gains
                    p.fill_(1.0)
                else:
                    s = std / math.sqrt(2 * self.L) if name.endswith("c_proj.weight") else std
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype) * s)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        logits = x @ self.wte.weight.t()  # tied lm_head: (B, T, Vp)
        real = logits[..., : self.V]       # padded columns never enter the softmax
        loss = None
        if targets is not None:
            loss = F.cross_entropy(real.reshape(-1, self.V), targets.reshape(-1))
        return real, loss

    def llmc_tensors(self, of=lambda p: p):
        """The 16 tensors in llm.c order and layout, per-layer ones stacked on a leading L;
        `of` maps each parameter to what is listed (the parameter itself by default)."""
        h = self.h
        st = lambda f: torch.stack([of(f(b)) for b in h])  # noqa: E731
        return [
            ("wte", of(self.wte.weight)), ("wpe", of(self.wpe.weight)),
            ("ln1w", st(lambda b: b.ln_1.weight)), ("ln1b", st(lambda b: b.ln_1.bias)),
            ("qkvw", st(lambda b: b.attn.c_attn.weight)), ("qkvb", st(lambda b: b.attn.c_attn.bias)),
            ("attprojw", st(lambda b: b.attn.c_proj.weight)), ("attprojb", st(lambda b: b.attn.c_proj.bias)),
            ("ln2w", st(lambda b: b.ln_2.weight)), ("ln2b", st(lambda b: b.ln_2.bias)),
            ("fcw", st(lambda b: b.mlp.c_fc.weight)), ("fcb", st(lambda b: b.mlp.c_fc.bias)),
            ("fcprojw", st(lambda b: b.mlp.c_proj.weight)), ("fcprojb", st(lambda b: b.mlp.c_proj.bias)),
            ("lnfw", of(self.ln_f.weight)), ("lnfb", of(self.ln_f.bias)),
        ]

    def llmc_grads(self):
        """The gradients of llmc_tensors(), zeros where a parameter has none."""
        return self.llmc_tensors(lambda p: p.grad if p.grad is not None else torch.zeros_like(p))


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy().copy()  # copy: never alias a live tensor


def main():
    p = argparse.ArgumentParser(description="independent PyTorch GPT-2 reference")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--L", type=int, default=2)
    p.add_argument("--NH", type=int, default=4)
    p.add_argument("--C", type=int, default=64)
    p.add_argument("--V", type=int, default=250)
    p.add_argument("--Vp", type=int, default=256)
    p.add_argument("--maxT", type=int, default=64)
    p.add_argument("--B", type=int, default=4)
    p.add_argument("--T", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--weight-decay", type=float, default=0.1)
    a = p.parse_args()
    torch.set_num_threads(1)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    beta1, beta2, eps = 0.9, 0.95, 1e-8

    gen = torch.Generator().manual_seed(a.seed)
    model = GPT(a.L, a.NH, a.C, a.V, a.Vp, a.maxT).to(dtype)
    model.init_weights(gen)
    # The fixed batch: grad_accum micro-batches of B rows of T+1 tokens.
    data = torch.randint(0, a.V, (a.grad_accum, a.B, a.T + 1), generator=gen)
    tokens, targets = data[..., :-1].contiguous(), data[..., 1:].contiguous()

    out = [("config", np.array([a.maxT, a.V, a.L, a.NH, a.C, a.Vp, a.B, a.T, a.grad_accum, a.steps],
                               dtype=np.int32)),
           ("hyper", np.array([a.lr, beta1, beta2, eps, a.weight_decay, a.grad_clip], dtype=np.float32)),
           ("tokens", tokens.to(torch.int32).numpy()), ("targets", targets.to(torch.int32).numpy())]
    out += [(n, f32(t)) for n, t in model.llmc_tensors()]

    # Single forward/backward on micro-batch 0.
    logits, loss = model(tokens[0], targets[0])
    loss.backward()
    out += [("logits", f32(logits)), ("loss", np.array([loss.item()], dtype=np.float32))]
    out += [("grad_" + n, f32(g)) for n, g in model.llmc_grads()]
    model.zero_grad(set_to_none=True)

    decay = [p_ for p_ in model.parameters() if p_.dim() >= 2]
    no_decay = [p_ for p_ in model.parameters() if p_.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(beta1, beta2), eps=eps)

    def step_loss():
        with torch.no_grad():
            return sum(model(tokens[m], targets[m])[1].item() for m in range(a.grad_accum)) / a.grad_accum

    train_losses, norms, coefs, after = [], [], [], []
    for step in range(1, a.steps + 1):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for m in range(a.grad_accum):
            _, l = model(tokens[m], targets[m])
            (l / a.grad_accum).backward()
            total += l.item() / a.grad_accum
        if step == 1:
            out += [("step1_grad_" + n, f32(g)) for n, g in model.llmc_grads()]
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip).item()
        coef = min(1.0, a.grad_clip / (norm + 1e-6))
        opt.step()
        train_losses.append(total)
        norms.append(norm)
        coefs.append(coef)
        after.append(step_loss())
        print(f"step {step}: loss {total:.6f}  grad norm {norm:.4f}  clip coef {coef:.4f}  "
              f"loss after update {after[-1]:.6f}")
    if not all(n > a.grad_clip for n in norms):
        print("WARNING: clipping was not active at every step", file=sys.stderr)
    out += [("train_losses", np.array(train_losses, dtype=np.float32)),
            ("grad_norms", np.array(norms, dtype=np.float32)),
            ("clip_coefs", np.array(coefs, dtype=np.float32)),
            ("losses_after", np.array(after, dtype=np.float32))]
    out += [("final_" + n, f32(t)) for n, t in model.llmc_tensors()]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_ref(a.out, out)
    print(f"wrote {a.out}: initial loss {loss.item():.6f} (ln V = {math.log(a.V):.6f})")


if __name__ == "__main__":
    main()
