"""`make demo`: Fashion-MNIST end to end — train, held-out metrics, export, reload, classify raw PNG bytes.

    python -m apps.demo --epochs 8
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8, help="training epochs")
    parser.add_argument("--train-size", type=int, default=60000, help="training images used (max 60,000)")
    parser.add_argument("--width", type=int, default=16, help="base width of the built-in CNN")
    parser.add_argument("--export", default="savedmodels/fashion_mnist", help="export folder")
    args = parser.parse_args(argv)

    from apps import image_classifier
    from toolkit.data import samples
    from toolkit.export import encode_png, load

    print("== 1. data: Fashion-MNIST (Debian's dataset-fashion-mnist, else keras.datasets) ==")
    x, y, names = samples.fashion_mnist("train")
    x_test, y_test, _ = samples.fashion_mnist("test")
    x, y = x[: args.train_size], y[: args.train_size]
    print(f"train {x.shape}, test {x_test.shape}, classes: {', '.join(names)}")

    print(f"\n== 2. train: built-in CNN (width {args.width}) from scratch, {args.epochs} epochs ==")
    start = time.time()
    run = image_classifier.train(
        (x, y, names), test_data=(x_test, y_test, names), epochs=args.epochs, batch_size=128,
        width=args.width, augment="flip,translate", lr_schedule="cosine", learning_rate=2e-3, patience=3,
        verbose=2,
    )
    print(f"trained in {time.time() - start:.0f} s")

    print("\n== 3. held-out metrics (10,000 test images) ==")
    print(image_classifier.APP.summary(run.metrics))
    for name, path in run.plots.items():
        print(f"plot {name}: {path}")

    print("\n== 4. export: raw image bytes in, scores / classes / labels out ==")
    path = run.export(args.export, target="cpu")
    print(f"exported {path}")

    print("\n== 5. reload the SavedModel and classify raw PNG bytes ==")
    predictor = load(path)
    picks = np.random.default_rng(0).choice(len(x_test), 8, replace=False)
    out = predictor([encode_png(x_test[i]) for i in picks])
    correct = 0
    for i, label, scores, cls in zip(picks, out["labels"], out["scores"], out["classes"]):
        truth = names[y_test[i]]
        correct += label.decode() == truth
        print(f"test image {i:5d}: predicted {label.decode():<11} ({scores[cls]:.2f})  true {truth}")
    print(f"{correct}/8 correct; test accuracy {run.metrics['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
