"""Tiny real datasets that are not ours, for the conformance matrix: digit photos of mixed formats and sizes,
digit scenes as COCO / YOLO / VOC annotations and image + mask folders, real review sentences, a tiny BERT."""

from __future__ import annotations

import csv
import os
import random
import re


def image_folder(root: str, classes=(0, 1), per_class: int = 6) -> str:
    """scikit-learn's real handwritten digits as a class-per-folder tree mixing RGB PNG and JPEG of
    different sizes (16, 20, 28 px): what a user's photo folder looks like."""
    from PIL import Image

    from toolkit.data import samples

    x, y, _ = samples.digits()
    names = {0: "zero", 1: "one", 2: "two", 3: "three"}
    for c in classes:
        folder = os.path.join(root, names[c])
        os.makedirs(folder, exist_ok=True)
        for i, pixels in enumerate(x[y == c][:per_class]):
            side = (16, 20, 28)[i % 3]
            image = Image.fromarray(pixels[..., 0]).resize((side, side), Image.BILINEAR).convert("RGB")
            if i % 2:
                image.save(os.path.join(folder, f"{c}_{i}.jpg"), quality=95)
            else:
                image.save(os.path.join(folder, f"{c}_{i}.png"))
    return root


def image_files(root: str) -> list:
    """One PNG and one JPEG from an `image_folder` tree (different classes where possible)."""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith((".png", ".jpg")))
    png = next(f for f in files if f.endswith(".png"))
    jpg = next((f for f in reversed(files) if f.endswith(".jpg")), files[-1])
    return [png, jpg]


def scenes(count: int = 4, image_size: int = 32, seed: int = 1):
    """Detection / segmentation scenes of real digits pasted on a canvas (toolkit.data.scenes)."""
    from toolkit.data.scenes import digit_scenes

    return digit_scenes(count, image_size=image_size, objects=(1, 2), object_size=(10, 16), classes=[0, 1],
                        seed=seed)


def detection_data(root: str, format: str, seed: int = 1) -> str:
    """A COCO JSON file / YOLO folder / VOC folder of 4 digit scenes; returns the path to pass as --data."""
    from toolkit.data.annotations import from_scenes, write_detections

    return write_detections(from_scenes(scenes(seed=seed)), root, format)


def segmentation_data(root: str, seed: int = 3) -> str:
    from toolkit.data.mask_writer import write_segmentation_folder

    return write_segmentation_folder(scenes(image_size=24, seed=seed), root)


def polarity_rows(count: int = 40, seed: int = 0) -> list:
    """`count` real movie-review sentences (Pang & Lee polarity, from gensim's test data), balanced, shuffled."""
    from toolkit.data.text_samples import polarity

    texts, labels = polarity()
    rows = [(t, lab) for t, lab in zip(texts, labels)]
    pos = [r for r in rows if r[1] == "pos"][: count // 2]
    neg = [r for r in rows if r[1] == "neg"][: count // 2]
    picked = pos + neg
    random.Random(seed).shuffle(picked)
    return picked


def text_csv(path: str, rows: list, text_column: str = "review", label_column: str = "sentiment") -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([text_column, label_column])
        writer.writerows(rows)
    return path


def bert_preset(root: str, texts) -> str:
    """A tiny random BERT saved as a native keras-hub preset folder (offline), vocabulary from `texts`."""
    import keras

    from toolkit.models import bert

    words = sorted({w for t in texts for w in re.findall(r"[a-z]+|[^a-z\s]", t.lower())})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words[:400]
    keras.utils.set_random_seed(0)
    backbone, tokenizer = bert.tiny_bert(vocab, num_layers=1, hidden_dim=16, num_heads=2, max_sequence_length=32)
    path = os.path.join(root, "tiny_bert")
    backbone.save_to_preset(path)
    tokenizer.save_to_preset(path)
    return path


def images_under(path: str, count: int = 2) -> list:
    """The first `count` PNG/JPEG files under a data folder (or a COCO JSON file's folder)."""
    root = path if os.path.isdir(path) else os.path.dirname(path)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                   if f.lower().endswith((".png", ".jpg", ".jpeg")) and "mask" not in d)
    assert files, f"no images under {root}"
    return files[:count]
