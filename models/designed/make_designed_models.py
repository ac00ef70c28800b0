#!/usr/bin/python3
"""Makes the small designed TorchScript models the tests use (run with Debian's python3-torch).

Each follows, or deliberately breaks, the engine contract
"ImageNet-normalised RGB [B,3,H,W] -> logits [B,1,H,W]":

  lumakey.pt          logits = 20 * (luma - 0.5), luma = BT.601 luma of the un-normalised RGB.
                      Bright pixels are foreground (probability > 0.5), dark ones background, so a
                      test can predict the matte of any frame exactly.
  softkey.pt          a linear key: probability = (luma - 0.13) / 0.70, clamped to 0.0001..0.9999, as
                      logits. On a dark background under a bright subject (the spatial tests'
                      scenes) the probability is the coverage itself, so a soft edge, a thin
                      stroke or a blurred resize shows up in the matte as it would in a real one.
  probkey.pt          softkey's probability itself (0..1, the model ends with its own sigmoid, as
                      many exports do) instead of logits: read as logits it is foreground
                      everywhere; with model-output=probability it gives softkey's matte.
  wrong_output.pt     returns 3 channels: breaks the output contract.
  wrong_input.pt      a convolution that takes 1 channel: fails on a 3-channel input.
  half_size.pt        lumakey's logits at half the input's width and height: breaks the contract
                      (logits must have the input's size).
  nan_bright.pt       lumakey, but NaN wherever luma > 0.5: every bright pixel is a NaN, so a test
                      knows how many NaN a frame gives (they must come out as background).

Usage: /usr/bin/python3 models/designed/make_designed_models.py [OUTPUT_DIR]
"""
import os
import sys

import torch

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class LumaKey(torch.nn.Module):
    def __init__(self, gain: float = 20.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.register_buffer("weights", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x * self.std + self.mean
        luma = (rgb * self.weights).sum(dim=1, keepdim=True)
        return self.gain * (luma - 0.5)


class SoftKey(torch.nn.Module):
    def __init__(self, low: float = 0.13, high: float = 0.83):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.register_buffer("weights", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))
        self.low = low
        self.high = high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x * self.std + self.mean
        luma = (rgb * self.weights).sum(dim=1, keepdim=True)
        p = ((luma - self.low) / (self.high - self.low)).clamp(0.0001, 0.9999)
        return torch.log(p / (1.0 - p))


class ProbKey(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.key = SoftKey()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.key(x))


class WrongOutput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0


class WrongInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class HalfSize(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.key = LumaKey()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(self.key(x), 2)


class NanBright(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.key = LumaKey()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.key(x)
        return torch.where(logits > 0, torch.full_like(logits, float("nan")), logits)


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)
    for name, module in [("lumakey", LumaKey()), ("softkey", SoftKey()), ("wrong_output", WrongOutput()),
                         ("wrong_input", WrongInput()), ("half_size", HalfSize()), ("nan_bright", NanBright()),
                         ("probkey", ProbKey())]:
        scripted = torch.jit.script(module.eval())
        path = os.path.join(out_dir, name + ".pt")
        scripted.save(path)
        print(path)


if __name__ == "__main__":
    main()
