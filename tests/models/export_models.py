#!/usr/bin/env python3
"""Exports the real models dlcc is tested on, with random weights.

torchvision ResNet-18, MobileNetV2 and SqueezeNet 1.1; a BERT-style encoder
and a GPT-2-style decoder written here.  Eval mode, opset 17, the exporter's
constant folding off so that the shape subgraphs (Shape -> Gather ->
Unsqueeze -> Concat -> Reshape) stay in the graph.  The transformer models
keep batch and sequence length symbolic.

Usage: export_models.py OUT_DIR [NAME ...]
"""
import math
import os
import sys
import warnings

import torch
import torch.nn as nn

warnings.filterwarnings("ignore")


class Attention(nn.Module):
    def __init__(self, d, heads, causal):
        super().__init__()
        self.h, self.dk, self.causal = heads, d // heads, causal
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def forward(self, x, mask=None):
        b, s, d = x.shape
        def split(t):
            return t.view(b, s, self.h, self.dk).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.dk)
        if self.causal:
            cm = torch.tril(torch.ones(s, s, dtype=torch.bool))
            att = att.masked_fill(~cm, float("-inf"))
        if mask is not None:
            att = att + (1.0 - mask[:, None, None, :].to(att.dtype)) * -10000.0
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, s, d)
        return self.o(y)


class Block(nn.Module):
    def __init__(self, d, heads, causal):
        super().__init__()
        self.causal = causal
        self.ln1 = nn.LayerNorm(d)
        self.att = Attention(d, heads, causal)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, 4 * d)
        self.ff2 = nn.Linear(4 * d, d)
        self.act = nn.GELU(approximate="tanh") if causal else nn.GELU()

    def forward(self, x, mask=None):
        if self.causal:  # pre-norm (GPT-2)
            x = x + self.att(self.ln1(x))
            return x + self.ff2(self.act(self.ff1(self.ln2(x))))
        x = self.ln1(x + self.att(x, mask))  # post-norm (BERT)
        return self.ln2(x + self.ff2(self.act(self.ff1(x))))


class BertEncoder(nn.Module):
    def __init__(self, vocab=1000, d=128, heads=4, layers=2, max_len=128):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.ln = nn.LayerNorm(d)
        self.blocks = nn.ModuleList([Block(d, heads, False) for _ in range(layers)])
        self.pool = nn.Linear(d, d)

    def forward(self, ids, mask):
        s = ids.shape[1]
        pos = torch.arange(s, dtype=torch.long).unsqueeze(0)
        x = self.ln(self.tok(ids) + self.pos(pos))
        for blk in self.blocks:
            x = blk(x, mask)
        return x, torch.tanh(self.pool(x[:, 0]))


class GPT2Decoder(nn.Module):
    def __init__(self, vocab=1000, d=128, heads=4, layers=2, max_len=128):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList([Block(d, heads, True) for _ in range(layers)])
        self.lnf = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        s = ids.shape[1]
        pos = torch.arange(0, s, dtype=torch.long).unsqueeze(0)
        x = self.tok(ids) + self.pos(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.lnf(x))


def export(name, out_dir):
    import torchvision
    torch.manual_seed(0)
    path = os.path.join(out_dir, name + ".onnx")
    if name in ("resnet18", "mobilenet_v2", "squeezenet1_1"):
        m = getattr(torchvision.models, name)()
        args = (torch.randn(1, 3, 224, 224),)
        names, outs, axes = ["input"], ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}}
    elif name == "bert":
        m = BertEncoder()
        args = (torch.randint(0, 1000, (2, 16)), torch.ones(2, 16, dtype=torch.long))
        names, outs = ["input_ids", "attention_mask"], ["hidden", "pooled"]
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                "hidden": {0: "batch", 1: "seq"}, "pooled": {0: "batch"}}
    elif name == "gpt2":
        m = GPT2Decoder()
        args = (torch.randint(0, 1000, (2, 16)),)
        names, outs = ["input_ids"], ["logits"]
        axes = {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    else:
        raise SystemExit("unknown model " + name)
    # Fresh torchvision models have identity BatchNorm statistics and tiny
    # classifier weights (MobileNetV2's logits are ~1e-9); give every
    # normalization layer random statistics so outputs are of order one and
    # the folding of BatchNormalization is really exercised.
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.1)
        if isinstance(mod, nn.Linear) and name == "mobilenet_v2":
            with torch.no_grad():
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.1)
    m.eval()
    with torch.no_grad():
        torch.onnx.export(m, args, path, opset_version=17, do_constant_folding=False,
                          input_names=names, output_names=outs, dynamic_axes=axes)
    return path


MODELS = ["resnet18", "mobilenet_v2", "squeezenet1_1", "bert", "gpt2"]

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for n in sys.argv[2:] or MODELS:
        p = os.path.join(out, n + ".onnx")
        if not os.path.exists(p):
            export(n, out)
        print(p)
