"""Could the backbone's ImageNet classifier tell "no vehicle in the photo"? Its vehicle probability on real photos.

Run: ``.venv/bin/python benchmarks/vehicle_probe.py [--data ../shared/data/car-damage-full] [--every 20]
[--negatives DIR]``: about three minutes on 2 cores. The pretrained EfficientNet-Lite0 classifier (the packaged
ImageNet weights) scores every photo of every split at 224 px; the vehicle probability is the summed softmax of its
road-vehicle classes and vehicle parts (:data:`VEHICLE_CLASSES`). A quality-gate check "no vehicle" must refuse
none of the real photos, so its threshold would sit under their minimum; the top sixth of every ``--every``-th
photo (wall, sky, background: no damage and mostly no vehicle) shows what such a threshold would still let through.

Two ways around the close-ups are measured too, both fitted on the train photos only and judged on val and test:
how unlike the train photos a photo is (Mahalanobis distance of the classifier's pooled features, Ledoit-Wolf
covariance), and the probability mass on the :data:`FAMILIAR_CLASSES` ImageNet classes most probable over the
train photos (whatever close-ups of paint look like to ImageNet, not only vehicles). Against them: the top strips
and three photos with no vehicle that ship inside installed packages (a portrait, a temple, a flower), plus the
photos of ``--negatives`` (BENCHMARKS.md uses the sample photos inside scikit-image's wheel: people, animals, a
document, brick, grass and gravel textures, the moon).

With ``--negatives``, a learned check is measured too: a logistic regression of "train photo" against the
negatives on the pooled features, each negative scored by a fit without it (leave one out), the real val + test
photos by the fit on all of them; a usable check would score every real photo above every held-out negative.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
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
FAMILIAR_CLASSES = 100


def classify(model: torch.nn.Module, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features ``[N, 1280]`` and ImageNet probabilities ``[N, 1000]`` of photos squashed to 224 px."""
    arrays = [np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)) for image in images]
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), torch.tensor(INPUT_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        features = model.forward_head(model.forward_features((batch - mean) / std), pre_logits=True)
        return features, model.get_classifier()(features).softmax(dim=1)


def classify_all(model: torch.nn.Module, images: list[Image.Image], what: str) -> tuple[np.ndarray, np.ndarray]:
    features, probabilities = [], []
    for start in tqdm(range(0, len(images), BATCH), desc=what, unit="batch"):
        f, p = classify(model, images[start : start + BATCH])
        features.append(f)
        probabilities.append(p)
    return torch.cat(features).double().numpy(), torch.cat(probabilities).double().numpy()


def no_vehicle_photos() -> list[Path]:
    """Photos without a vehicle that ship inside installed packages (matplotlib's and scikit-learn's samples)."""
    import matplotlib
    import sklearn

    return [
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
        Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg",
        Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg",
    ]


def negative_photos(folder: Path | None) -> dict[str, Image.Image]:
    """The packaged no-vehicle photos and those of ``folder``, by file name."""
    suffixes = {".jpg", ".jpeg", ".png"}
    extra = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes) if folder is not None else []
    return {path.name: Image.open(path) for path in [*no_vehicle_photos(), *extra]}


def learned_check(train: np.ndarray, negatives: np.ndarray, real: np.ndarray, names: list[str]) -> None:
    """Print the held-out negatives' and the real photos' "is a train-like photo" probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(x: np.ndarray, y: np.ndarray) -> object:
        regression = LogisticRegression(C=0.01, class_weight="balanced", max_iter=2000)
        return make_pipeline(StandardScaler(), regression).fit(x, y)

    labels = np.r_[np.ones(len(train)), np.zeros(len(negatives))]
    held_out = []
    for i in range(len(negatives)):
        model = fit(np.vstack([train, np.delete(negatives, i, 0)]), np.delete(labels, len(train) + i))
        held_out.append(float(model.predict_proba(negatives[i : i + 1])[0, 1]))  # type: ignore[attr-defined]
    scores = fit(np.vstack([train, negatives]), labels).predict_proba(real)[:, 1]  # type: ignore[attr-defined]
    print()
    print("learned check (logistic regression, C 0.01, negatives held out one at a time):")
    print(f"real val + test photos: min {scores.min():.3f}, 1 % {np.percentile(scores, 1):.3f}")
    ranked = sorted(zip(held_out, names, strict=True), reverse=True)
    print("held-out negatives:", ", ".join(f"{name} {score:.2f}" for score, name in ranked))
    refused = sum(score < scores.min() for score in held_out)
    print(f"negatives under the lowest real photo: {refused} of {len(held_out)}")


def percentiles(name: str, values: np.ndarray) -> str:
    cells = " | ".join(f"{v:.4g}" for v in np.percentile(values, [0, 1, 5, 50, 95, 100]))
    return f"| {name} | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--negatives", type=Path, help="a folder of more photos without a vehicle")
    args = parser.parse_args()
    from sklearn.covariance import LedoitWolf

    model = pretrained_classifier("efficientnet_lite0").eval()
    suffixes = {".jpg", ".jpeg", ".png"}
    paths = {
        split: sorted(p for p in (args.data / "images" / split).iterdir() if p.suffix.lower() in suffixes)
        for split in ("train", "val", "test")
    }
    unseen = paths["val"] + paths["test"]
    strips = []
    for path in [*paths["train"], *unseen][:: args.every]:
        with Image.open(path) as image:
            width, height = image.size
            strips.append(image.convert("RGB").crop((0, 0, width, max(8, height // 6))))
    groups = {
        "train photos": classify_all(model, [Image.open(p) for p in paths["train"]], "train photos"),
        "val + test photos": classify_all(model, [Image.open(p) for p in unseen], "val + test photos"),
        "top sixth of a photo": classify_all(model, strips, "top strips"),
    }
    negatives = negative_photos(args.negatives)
    no_vehicle = f"no vehicle ({len(negatives)})"
    groups[no_vehicle] = classify_all(model, list(negatives.values()), "no-vehicle photos")
    train_features, train_probabilities = groups["train photos"]
    covariance = LedoitWolf().fit(train_features)
    familiar = np.argsort(train_probabilities.mean(axis=0))[::-1][:FAMILIAR_CLASSES]
    measures = {
        "vehicle probability (26 vehicle classes)": lambda f, p: p[:, list(VEHICLE_CLASSES)].sum(axis=1),
        f"mass on the {FAMILIAR_CLASSES} classes most probable on train photos": lambda f, p: p[:, familiar].sum(1),
        "Mahalanobis distance to the train photos' features": lambda f, p: np.sqrt(covariance.mahalanobis(f)),
    }
    print(f"data: {args.data}; {len(unseen)} val + test photos, {len(strips)} top strips, fitted on train")
    for title, measure in measures.items():
        print()
        print(f"| {title} | min | 1 % | 5 % | median | 95 % | max |")
        print("|---|---|---|---|---|---|---|")
        for name, (features, probabilities) in groups.items():
            if name != "train photos":
                print(percentiles(name, measure(features, probabilities)))
        real_values = measure(*groups["val + test photos"])
        no_vehicle_values = measure(*groups[no_vehicle])
        # a distance refuses above the real photos' largest, the other measures below their smallest
        beyond = no_vehicle_values > real_values.max() if "distance" in title else no_vehicle_values < real_values.min()
        print(f"no-vehicle photos a check refusing no real photo would refuse: {beyond.sum()} of {len(beyond)}")
    real = groups["val + test photos"][1][:, list(VEHICLE_CLASSES)].sum(axis=1)
    lowest = np.argsort(real)[:5]
    print()
    print("lowest vehicle probability among val + test:", ", ".join(f"{unseen[i].name} {real[i]:.4f}" for i in lowest))
    if args.negatives is not None:
        learned_check(train_features, groups[no_vehicle][0], groups["val + test photos"][0], list(negatives))


if __name__ == "__main__":
    main()
