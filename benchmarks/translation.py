"""Translation benchmark: the Transformer translator against the GRU + Bahdanau one, side by side in one run.

    flock /tmp/bench.lock nice -n 5 .venv/bin/python -m benchmarks.translation

Data: the English -> French pairs of Django's .po catalogs (`toolkit.data.text_samples.django_parallel`, see
OFFLINE.md), the same random 85/15 split (seed 0) as the GRU row of `benchmarks.text`. Score: held-out corpus
BLEU-4 (keras-hub's `Bleu` via `toolkit.metrics.bleu.corpus_bleu`) against lower-cased, punctuation-stripped
references, greedy and beam 4. Results go to BENCHMARKS.md (section "translation").
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks._report import machine, table, write_section  # noqa: E402


def split_pairs(seed: int = 0, fraction: float = 0.85):
    from toolkit.data.text_samples import django_parallel

    pairs = django_parallel("fr")
    order = np.random.default_rng(seed).permutation(len(pairs))
    cut = int(fraction * len(pairs))
    return [pairs[i] for i in order[:cut]], [pairs[i] for i in order[cut:]]


def score(name, translator, train, test, epochs, batch_size, learning_rate):
    from toolkit.metrics.bleu import corpus_bleu

    began = time.perf_counter()
    history = translator.fit(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    seconds = time.perf_counter() - began
    sources = [s for s, _ in test]
    references = translator.normalize([t for _, t in test])
    began = time.perf_counter()
    greedy = translator.translate(sources)
    greedy_seconds = time.perf_counter() - began
    beam = translator.translate(sources, beam_width=4)
    seen = train[:len(test)]
    train_bleu = corpus_bleu(translator.normalize([t for _, t in seen]), translator.translate([s for s, _ in seen]))
    return {"name": name, "params": translator.model.count_params(), "epochs": epochs, "seconds": seconds,
            "final_loss": history["loss"][-1], "greedy": corpus_bleu(references, greedy),
            "beam": corpus_bleu(references, beam), "train_bleu": train_bleu,
            "greedy_ms_per_sentence": 1000 * greedy_seconds / len(sources),
            "examples": [(s, t, g) for (s, t), g in list(zip(test, greedy))[:5]]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gru-epochs", type=int, default=40)
    parser.add_argument("--transformer-epochs", type=int, default=40)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    from toolkit.models.text.seq2seq import Translator
    from toolkit.models.text.transformer_seq2seq import TransformerTranslator

    command = "python -m benchmarks.translation " + " ".join(argv if argv is not None else sys.argv[1:])
    load = os.getloadavg()[0]
    train, test = split_pairs()
    sources, targets = [s for s, _ in train], [t for _, t in train]
    rows = [
        score("GRU + Bahdanau (biGRU 128, embedding 64)",
              Translator(sources, targets, units=128, embedding_dim=64, max_length=12), train, test,
              args.gru_epochs, 32, 2e-3),
        score("Transformer (2+2 layers, d=64, 4 heads, d_ff=256, dropout 0.1)",
              TransformerTranslator(sources, targets, num_layers=2, hidden_dim=64, num_heads=4, dropout=0.1,
                                    max_length=12), train, test, args.transformer_epochs, 32, 2e-3),
    ]
    for row in rows:
        print(row, flush=True)
    md = [f"Command: `{command.strip()}` · {machine()} · load average at start {load:.1f} on 2 cores (shared: "
          "times are pessimistic).", "",
          f"Django .po en->fr: {len(train)} training / {len(test)} held-out pairs (random 85/15 split, seed 0, the "
          "split of the GRU row in the text section). Corpus BLEU-4 (keras-hub) against lower-cased, "
          "punctuation-stripped references, both models trained in this run:", "",
          table(["model", "parameters", "epochs", "train s", "held-out BLEU greedy", "held-out BLEU beam 4",
                 "training-pairs BLEU (greedy)", "greedy ms/sentence"],
                [[r["name"], f"{r['params']:,}", r["epochs"], f"{r['seconds']:.0f}", f"{r['greedy']:.4f}",
                  f"{r['beam']:.4f}", f"{r['train_bleu']:.4f}", f"{r['greedy_ms_per_sentence']:.1f}"] for r in rows]),
          ""]
    for r in rows:
        md.append(f"Held-out examples, {r['name'].split(' (')[0]} (source | reference | greedy): " +
                  " / ".join(f"{s} | {t} | {g}" for s, t, g in r["examples"]))
        md.append("")
    md.append("Reading: about 500 short UI strings (many single words and language names) are very little parallel "
              "text for either model; held-out BLEU mostly measures memorised vocabulary shared with the training "
              "strings, so differences of a few points are within what another split or seed would give.")
    text = "\n".join(md)
    print(text)
    if not args.no_write:
        write_section("translation", "## Translation: Transformer vs GRU + attention\n\n" + text)


if __name__ == "__main__":
    main()
