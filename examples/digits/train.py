"""Trains the small digits classifier bundled with dlcc's examples.

Reproduces examples/digits/digits.onnx and the test images in
examples/digits/images/ from scikit-learn's bundled 8x8 digits data set
(no download).  Needs torch, onnx and scikit-learn:

    .venv/bin/pip install scikit-learn
    .venv/bin/python examples/digits/train.py

The network is a small CNN: Conv-Relu-MaxPool twice, Flatten, Gemm,
Softmax; input "image" float32[1,1,8,8] with pixels scaled to [0, 1],
output "probs" float32[1,10].
"""
import os

import numpy as np
import torch
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))


class DigitsNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return torch.softmax(self.fc(x), dim=1)


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    order = rng.permutation(len(x))
    test, train = order[:300], order[300:]

    net = DigitsNet()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    for epoch in range(40):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            p = net(xt[idx])
            loss = torch.nn.functional.nll_loss(torch.log(p + 1e-9), yt[idx])
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x[test])).argmax(1).numpy()
    print("test accuracy: %.3f on %d images" % ((pred == y[test]).mean(),
                                                 len(test)))

    torch.onnx.export(net, torch.zeros(1, 1, 8, 8),
                      os.path.join(HERE, "digits.onnx"), opset_version=17,
                      input_names=["image"], output_names=["probs"])

    # One held-out image of each digit.
    out = os.path.join(HERE, "images")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith(".npy"):
            os.remove(os.path.join(out, name))
    seen = set()
    for k, i in enumerate(test):
        if y[i] in seen:
            continue
        seen.add(y[i])
        np.save(os.path.join(out, "digit_%d_label_%d.npy" % (k, y[i])),
                x[i:i + 1])
        if len(seen) == 10:
            break


if __name__ == "__main__":
    main()
