"""FLOPs of one photo through the lite detector's exported module, per part, for a few network shapes.

Run: ``.venv/bin/python benchmarks/model_flops.py [--imgsz 384 512 640]``

FLOPs, unlike seconds, do not move with the machine's load, and on a 2-core CPU they predict training steps and
inference alike (the convolutions dominate both). The table shows where the cost of the default network sits: the
FCOS head runs its convolutions on every pyramid level, stride 4 included.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from autoinspect.training.base import LiteConfig
from autoinspect.training.lite.export import ContractDetector
from autoinspect.training.lite.model import build_detector

SHAPES = (
    LiteConfig(fpn_channels=96, head_convs=4),
    LiteConfig(fpn_channels=64, head_convs=4),
    LiteConfig(fpn_channels=96, head_convs=2),
    LiteConfig(fpn_channels=64, head_convs=2),
)
PARTS = ("backbone.features", "backbone.fpn", "head", "presence")


def part_flops(config: LiteConfig, imgsz: int) -> dict[str, float]:
    """GFLOPs of one photo per part of :class:`ContractDetector`, and in all."""
    module = ContractDetector(build_detector(config, 2, imgsz, pretrained=False), imgsz).eval()
    counter = FlopCounterMode(display=False, depth=None)
    with counter, torch.no_grad():
        module(torch.rand(1, 3, imgsz, imgsz))
    counts = {name.removeprefix("ContractDetector."): sum(c.values()) for name, c in counter.get_flop_counts().items()}
    parts = {part: counts.get(part, 0) / 1e9 for part in PARTS}
    return parts | {"total": counter.get_total_flops() / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, nargs="+", default=[384, 512, 640])
    args = parser.parse_args()
    print("| imgsz | FPN ch | head convs | " + " | ".join(PARTS) + " | total GFLOPs |")
    print("|---:|---:|---:|" + "---:|" * (len(PARTS) + 1))
    for imgsz in args.imgsz:
        for config in SHAPES:
            flops = part_flops(config, imgsz)
            cells = " | ".join(f"{flops[part]:.2f}" for part in (*PARTS, "total"))
            print(f"| {imgsz} | {config.fpn_channels} | {config.head_convs} | {cells} |")


if __name__ == "__main__":
    main()
