"""Could the backbone's ImageNet classifier tell "no vehicle in the photo"? Its vehicle probability on real photos.

Run: ``.venv/bin/python benchmarks/vehicle_probe.py [--data ../shared/data/car-damage-full] [--every 20]``: about
two minutes on 2 cores. The pretrained EfficientNet-Lite0 classifier (the packaged ImageNet weights) scores every
photo of every split at 224 px; the vehicle probability is the summed softmax of its road-vehicle classes and
vehicle parts (:data:`VEHICLE_CLASSES`). A quality-gate check "no vehicle" must refuse none of the real photos,
so its threshold would sit under their minimum; the top sixth of every ``--every``-th photo (wall, sky, background:
no damage and mostly no vehicle) shows what such a threshold would still let through.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from tqdm import tqdm

from autoinspect.training.lite.backbone import INPUT_MEAN, INPUT_STD, pretrained_classifier

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "car-damage-full"
VEHICLE_CLASSES = (
    407, 436, 468, 475, 479, 511, 555, 569, 573, 575, 581, 609, 627,
    654, 656, 661, 675, 717, 734, 751, 757, 779, 803, 817, 864, 867,
)  # fmt: skip
"""ImageNet indices: ambulance, station wagon, cab, car mirror, car wheel, convertible, fire engine, garbage
truck, go-kart, golf cart, grille, jeep, limousine, minibus, minivan, Model T, moving van, pickup, police van,
racer, recreational vehicle, school bus, snowplow, sports car, tow truck, trailer truck."""
SIDE = 224
BATCH = 32


def vehicle_probability(model: torch.nn.Module, images: list[Image.Image]) -> npt.NDArray[np.float64]:
    arrays = [np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)) for image in images]
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), torch.tensor(INPUT_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        probabilities = model((batch - mean) / std).softmax(dim=1)
    return probabilities[:, list(VEHICLE_CLASSES)].sum(dim=1).double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--every", type=int, default=20)
    args = parser.parse_args()
    model = pretrained_classifier("efficientnet_lite0").eval()
    paths = sorted(p for p in (args.data / "images").rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    scores = []
    for start in tqdm(range(0, len(paths), BATCH), desc="real photos", unit="batch"):
        scores.append(vehicle_probability(model, [Image.open(path) for path in paths[start : start + BATCH]]))
    real = np.concatenate(scores)
    strips = []
    for path in paths[:: args.every]:
        with Image.open(path) as image:
            width, height = image.size
            strips.append(image.convert("RGB").crop((0, 0, width, max(8, height // 6))))
    top = vehicle_probability(model, strips)
    print(f"data: {args.data}, {len(paths)} photos; {len(strips)} top strips")
    print()
    print("| vehicle probability | min | 1 % | 5 % | median |")
    print("|---|---|---|---|---|")
    for name, values in (("real photos", real), ("top sixth of a photo", top)):
        cells = " | ".join(f"{v:.4f}" for v in np.percentile(values, [0, 1, 5, 50]))
        print(f"| {name} | {cells} |")
    floor = float(real.min())
    print()
    through = np.mean(top >= floor)
    print(f"a threshold under every real photo ({floor:.4f}) lets {through:.0%} of the top strips through")
    lowest = np.argsort(real)[:5]
    print("lowest real photos:", ", ".join(f"{paths[i].name} {real[i]:.4f}" for i in lowest))


if __name__ == "__main__":
    main()
