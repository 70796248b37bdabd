"""Layer statistics (streamed debug model) vs the lecture notes' predict-everything-then-numpy recipe, and the
FGSM robustness curve, on a trained Fashion-MNIST classifier.

    .venv/bin/python -m benchmarks.inspect                        # trains (or reuses) the model, writes the section
    .venv/bin/python -m benchmarks.inspect --sizes 1000 --fgsm-limit 200 --no-write    # smoke run

Model: `apps.image_classifier` (built-in small_cnn, width 16, 2 epochs on 20,000 training images; reused from
benchmarks/out/inspect-model/ when present, or `--model PATH`). Statistics: every conv and dense layer
(8 layers, 362 channels), per-channel min, max, mean, std, fraction of zeros over N test images.
- streamed: `toolkit.inspect.statistics.layer_statistics` (one multi-output debug model, reductions in the graph,
  batches of 500, numpy merges [6, C] vectors);
- naive: the notes' recipe for all layers at once: `Model(model.inputs, [layer.output...]).predict(x)`, then
  numpy min / max / mean / std / zeros per channel.
Each variant runs in its own subprocess (same model, same data); peak memory is the process's peak RSS above
its RSS after loading and a warm-up batch (`/proc/self/clear_refs` resets the high-water mark).
Targets: streamed faster than naive, and its peak memory flat in N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks._report import machine, table, write_section

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
DEFAULT_MODEL = os.path.join(OUT, "inspect-model", "model.keras")


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _measure(variant: str, model_path: str, n: int, batch_size: int) -> dict:
    """One variant in this (child) process: time and peak RSS above the post-warm-up baseline."""
    import numpy as np

    from toolkit.data import samples
    from toolkit.inspect import load_model
    from toolkit.inspect.statistics import build_debug_model, layer_statistics

    model = load_model(model_path)
    x = samples.fashion_mnist("test")[0][:n].astype("float32")
    if variant == "streamed":
        debug = build_debug_model(model, preactivation=False)
        layer_statistics(model, x[:batch_size], debug_model=debug)  # warm-up (traces the graph)
    else:
        raw, names = build_debug_model(model, reduce=False, preactivation=False)
        raw.predict(x[:batch_size], batch_size=batch_size, verbose=0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    base = _rss_kib("VmRSS")
    start = time.perf_counter()
    if variant == "streamed":
        report = layer_statistics(model, x, batch_size=batch_size, debug_model=debug)
        stats = {s.name: [s.min, s.max, s.mean, s.std, s.zero_fraction] for s in report.layers}
    else:
        outputs = raw.predict(x, batch_size=batch_size, verbose=0)
        stats = {}
        for name, p in zip(names, outputs):
            axes = tuple(range(p.ndim - 1))
            stats[name] = [np.min(p, axis=axes), np.max(p, axis=axes), np.mean(p, axis=axes, dtype="float64"),
                           np.std(p, axis=axes, dtype="float64"), np.mean(p == 0, axis=axes)]
    seconds = time.perf_counter() - start
    peak = _rss_kib("VmHWM")
    return {"variant": variant, "n": n, "seconds": seconds, "peak_mib": max(peak - base, 0) / 1024,
            "stats": {k: [np.asarray(v).tolist() for v in vs] for k, vs in stats.items()}}


def _train(model_path: str, train_images: int, epochs: int) -> dict:
    from apps import image_classifier
    from toolkit.data import samples

    x, y, names = samples.fashion_mnist("train")
    test = samples.fashion_mnist("test")
    start = time.time()
    run = image_classifier.train((x[:train_images], y[:train_images], names), test_data=test, epochs=epochs,
                                 width=16, dense_units=64, batch_size=128, augment="none", verbose=2,
                                 run_dir=os.path.join(OUT, "runs"))
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    run.model.save(model_path)
    info = {"accuracy": run.metrics["accuracy"], "train_seconds": time.time() - start,
            "train_images": train_images, "epochs": epochs}
    with open(model_path + ".json", "w") as f:
        json.dump(info, f)
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a .keras Fashion-MNIST model (trained if missing)")
    parser.add_argument("--sizes", default="2500,10000", help="numbers of test images for the statistics")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--train-images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fgsm-limit", type=int, default=2000, help="test images for the robustness curve")
    parser.add_argument("--epsilons", default="0,1,2,4,8,16")
    parser.add_argument("--time-limit", type=float, default=1500, help="wall-clock cap in seconds (whole run)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "MODEL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(_measure(args.child[0], args.child[1], int(args.child[2]), args.batch_size)))
        return 0
    deadline = time.time() + args.time_limit
    started = time.time()
    if os.path.isfile(args.model) and os.path.isfile(args.model + ".json"):
        with open(args.model + ".json") as f:
            trained = json.load(f)
        trained["reused"] = True
    else:
        trained = _train(args.model, args.train_images, args.epochs)
    load = os.getloadavg()[0]

    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        for variant in ("streamed", "naive"):
            remaining = deadline - time.time()
            if remaining < 30:
                print(f"time cap reached; skipping {variant} n={n}")
                continue
            proc = subprocess.run([sys.executable, "-m", "benchmarks.inspect", "--batch-size", str(args.batch_size),
                                   "--child", variant, args.model, str(n)], capture_output=True, text=True,
                                  timeout=remaining, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                print(proc.stderr[-3000:])
                raise RuntimeError(f"{variant} n={n} failed")
            results.append(json.loads(line[0][7:]))
            print(f"{variant:>8} n={n:>6}: {results[-1]['seconds']:.2f} s, peak +{results[-1]['peak_mib']:.0f} MiB")

    import numpy as np

    agree = []
    for n in sorted({r["n"] for r in results}):
        pair = {r["variant"]: r["stats"] for r in results if r["n"] == n}
        if len(pair) == 2:
            diffs = [np.max(np.abs(np.asarray(a) - np.asarray(b)) / (1 + np.abs(np.asarray(b))))
                     for name in pair["naive"] for a, b in zip(pair["streamed"][name], pair["naive"][name])]
            agree.append((n, float(max(diffs))))

    from toolkit.data import samples
    from toolkit.inspect import load_model, robustness_curve

    robustness = None
    if deadline - time.time() > 30:
        model = load_model(args.model)
        x, y, _ = samples.fashion_mnist("test")
        t = time.time()
        robustness = robustness_curve(model, (x[:args.fgsm_limit].astype("float32"), y[:args.fgsm_limit]),
                                      [float(e) for e in args.epsilons.split(",")], method="both", steps=5,
                                      path=os.path.join(OUT, "inspect_robustness.png"))
        robustness["seconds"] = time.time() - t
        print(robustness["table"])

    rows = [[r["n"], r["variant"], round(r["seconds"], 2), round(r["n"] / r["seconds"]), round(r["peak_mib"], 1)]
            for r in results]
    speed = []
    for n in sorted({r["n"] for r in results}):
        t = {r["variant"]: r["seconds"] for r in results if r["n"] == n}
        if len(t) == 2:
            speed.append(f"n={n}: streamed {t['naive'] / t['streamed']:.2f}x faster")
    text = [
        "## inspect: layer statistics (streamed debug model vs predict-then-numpy) and FGSM robustness",
        "",
        f"Command: `.venv/bin/python -m benchmarks.inspect` · {machine()} · load average at start {load:.1f} "
        "(2 cores shared with other agents' jobs: absolute times are inflated and noisy; each row's two variants "
        "ran back to back, so the ratio is the fairer number).",
        "",
        f"Model: image-classifier app, small_cnn width 16, {trained['epochs']} epochs on "
        f"{trained['train_images']} Fashion-MNIST training images, test accuracy {trained['accuracy']:.4f}"
        + (" (reused)" if trained.get("reused") else f" (trained in {trained['train_seconds']:.0f} s)") + ".",
        "Statistics over every conv and dense layer (min, max, mean, std, fraction of zeros per channel), "
        f"batch {args.batch_size}; peak memory = peak RSS above the post-warm-up RSS of a fresh process.",
        "",
        table(["test images", "variant", "seconds", "images/s", "peak extra MiB"], rows),
        "",
        "; ".join(speed) + ". Largest relative difference between the two variants' numbers: "
        + ", ".join(f"n={n}: {d:.1e}" for n, d in agree) + ".",
    ]
    if robustness:
        text += ["", f"FGSM robustness ({robustness['n']} test images; epsilon in pixels of 0-255; iterated = 5 "
                 f"steps of 2.5 eps/5 projected to the eps-ball; {robustness['seconds']:.0f} s); "
                 "plot: benchmarks/out/inspect_robustness.png", "", robustness["table"]]
    text += ["", f"Total wall time {time.time() - started:.0f} s (cap {args.time_limit:.0f} s)."]
    markdown = "\n".join(text)
    print(markdown)
    if not args.no_write:
        write_section("inspect", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
