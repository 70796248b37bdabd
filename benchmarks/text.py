"""Text benchmark: classifier 5-fold CV, our word2vec (and GloVe) against gensim on the same corpus, seq2seq BLEU.

    .venv/bin/python -m benchmarks.text                    # reduced sizes (shared 2-core machine)
    .venv/bin/python -m benchmarks.text --parts word2vec   # word2vec vs gensim (and GloVe) alone
    .venv/bin/python -m benchmarks.text --parts word2vec --w2v-tokens 2300000 --w2v-epochs 20 --glove-epochs 0
                                                           # the issue's anchor, on the whole corpus

Results go to BENCHMARKS.md (sections "text", "text-word2vec", and "text-word2vec-full" for a run over more than
1M tokens or 20+ epochs) with the command that produced them.
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


def cross_validate(texts, labels, model, folds=5, seed=0, **options):
    """Mean / std accuracy of `apps.text_classifier` over stratified folds (each fold's test never seen)."""
    from sklearn.model_selection import StratifiedKFold

    from apps import text_classifier

    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
    scores = []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with tempfile.TemporaryDirectory() as runs:
        for train_idx, test_idx in splitter.split(texts, labels):
            run = text_classifier.train((list(texts[train_idx]), list(labels[train_idx])),
                                        test_data=(list(texts[test_idx]), list(labels[test_idx])),
                                        model=model, validation_split=0.0, patience=-1, verbose=0, run_dir=runs,
                                        seed=seed, **options)
            scores.append(run.metrics["accuracy"])
    return float(np.mean(scores)), float(np.std(scores))


MODEL_OPTIONS = {
    "tfidf-mlp": {"epochs": 30, "units": 64, "dropout": 0.5},
    "lstm": {"epochs": 15, "sequence_length": 64, "embedding_dim": 64, "units": 32},
    "cnn": {"epochs": 15, "sequence_length": 64, "embedding_dim": 64, "units": 64},
}


def classifiers(args):
    from toolkit.data import text_samples

    rows = []
    datasets = {"polarity (200 sentences)": text_samples.polarity(),
                "mini newsgroups (200 docs, headers stripped)": text_samples.mini_newsgroups()}
    for name, (texts, labels) in datasets.items():
        for model, options in MODEL_OPTIONS.items():
            began = time.perf_counter()
            seq = {"sequence_length": 256} if "newsgroups" in name and model != "tfidf-mlp" else {}
            mean, std = cross_validate(texts, labels, model, **{**options, **seq})
            rows.append([name, model, f"{mean:.3f} ± {std:.3f}", f"{time.perf_counter() - began:.0f}"])
            print(rows[-1], flush=True)
    return rows


def sklearn_reference():
    """TF-IDF (1-2 grams) + logistic regression with scikit-learn on the same folds: is BoW learnable here?"""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    from toolkit.data import text_samples

    rows = []
    for name, (texts, labels) in {"polarity (200 sentences)": text_samples.polarity(),
                                  "mini newsgroups (200 docs, headers stripped)": text_samples.mini_newsgroups()}.items():
        pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=10, max_iter=1000))
        scores = cross_val_score(pipeline, texts, labels, cv=StratifiedKFold(5, shuffle=True, random_state=0))
        rows.append([name, "sklearn TF-IDF + LogisticRegression", f"{scores.mean():.3f} ± {scores.std():.3f}"])
    return rows


def w2v_corpus(max_tokens):
    from toolkit.data import text_samples

    sentences, total, sources = [], 0, []
    readers = [("lee_background", text_samples.lee_background), ("wordnet glosses", text_samples.wordnet_glosses),
               ("fortunes", text_samples.fortunes)]
    for name, reader in readers:
        try:
            documents = reader()
        except FileNotFoundError as error:
            print(f"skipping {name}: {error}")
            continue
        sources.append(name)
        for document in documents:
            tokens = text_samples.tokenize(document)
            if tokens:
                sentences.append(tokens)
                total += len(tokens)
            if total >= max_tokens:
                return sentences, total, sources
    return sentences, total, sources


def word2vec(args):
    from gensim.models import Word2Vec as GensimWord2Vec

    from toolkit.data.text_samples import questions_words_path
    from toolkit.models.text.word2vec import WordVectors, train_word2vec

    rng = np.random.default_rng(0)
    sentences, total, sources = w2v_corpus(args.w2v_tokens)
    order = rng.permutation(len(sentences))
    sentences = [sentences[i] for i in order]  # mix sources so each SGD epoch sees all of them
    common = dict(window=5, negative=5, min_count=5, sample=1e-3)
    questions = questions_words_path()
    # One run each per seed (`--w2v-seeds`): gensim's 2-worker accuracy moves by a few questions from run to run,
    # so the ratio of the means over seeds separates the two implementations from that noise.
    runs = {"gensim": [], "ours": []}  # (accuracy, words/s, seconds) per seed
    for seed in range(1, args.w2v_seeds + 1):
        # Vocabulary building is left out of both timings (gensim's build_vocab; our Corpus and noise table).
        gensim_model = GensimWord2Vec(vector_size=args.w2v_dim, sg=1, epochs=args.w2v_epochs, workers=2, seed=seed,
                                      **common)
        began = time.perf_counter()
        gensim_model.build_vocab(sentences)
        gensim_vocab_seconds = time.perf_counter() - began
        began = time.perf_counter()
        gensim_model.train(sentences, total_examples=gensim_model.corpus_count, epochs=args.w2v_epochs)
        gensim_seconds = time.perf_counter() - began
        gensim_vectors = WordVectors(gensim_model.wv.index_to_key, gensim_model.wv.vectors)
        gensim_eval = gensim_vectors.evaluate_analogies(questions)
        runs["gensim"].append((gensim_eval["accuracy"], total * args.w2v_epochs / gensim_seconds, gensim_seconds))
        ours = train_word2vec(sentences, dim=args.w2v_dim, epochs=args.w2v_epochs, batch_size=args.w2v_batch,
                              negative_pool=args.w2v_pool or None, seed=seed, **common)
        ours_eval = ours.evaluate_analogies(questions)
        runs["ours"].append((ours_eval["accuracy"], ours.stats["words_per_second"], ours.stats["seconds"]))
        print(f"word2vec seed {seed}: gensim {runs['gensim'][-1]}, ours {runs['ours'][-1]}", flush=True)
    sweep = alpha_sweep(args, sentences, common, questions) if args.w2v_alphas else []
    glove_result = glove(args, sentences) if args.glove_epochs else None
    gensim_native = gensim_model.wv.evaluate_word_analogies(questions)[0]
    mean = {name: np.mean(np.array(values), axis=0) for name, values in runs.items()}
    std = {name: np.std(np.array(values), axis=0) for name, values in runs.items()}

    def row(label, name, asked):
        spread = f" ± {std[name][0]:.4f} over {args.w2v_seeds} seeds" if args.w2v_seeds > 1 else ""
        return [label, f"{mean[name][0]:.4f}{spread} ({asked:,} q)", f"{mean[name][1]:,.0f}", f"{mean[name][2]:.0f}"]

    return {
        "corpus": f"{total:,} tokens ({', '.join(sources)}), vocabulary {ours.stats['vocabulary']:,}",
        "tokens": total, "gensim_vocab_seconds": gensim_vocab_seconds, "ours_accuracy": mean["ours"][0],
        "settings": f"skip-gram, {args.w2v_dim}-d, window 5, negative 5, min_count 5, sample 1e-3, "
                    f"{args.w2v_epochs} epochs; gensim 2 workers"
                    + (f"; seeds 1-{args.w2v_seeds}, one run of each per seed (means shown)" if args.w2v_seeds > 1
                       else ""),
        "rows": [row("gensim Word2Vec", "gensim", gensim_eval["questions"]),
                 row("toolkit (Keras)", "ours", ours_eval["questions"])],
        "accuracy_ratio": mean["ours"][0] / max(mean["gensim"][0], 1e-9),
        "speed_ratio": mean["ours"][1] / mean["gensim"][1],
        "per_seed": runs,
        "gensim_native_accuracy": gensim_native,
        "nearest": {w: [x for x, _ in ours.most_similar(w, k=5)] for w in ("king", "water", "computer") if w in ours},
        "gensim_nearest": {w: [x for x, _ in gensim_vectors.most_similar(w, k=5)] for w in ("king", "water", "computer")
                           if w in gensim_vectors},
        "glove": glove_result, "steps": ours.stats["steps"], "alpha_sweep": sweep,
    }


def alpha_sweep(args, sentences, common, questions):
    """Both implementations at each starting learning rate of `--w2v-alphas` (seeds 1..N): is a gap at the default
    0.025 a property of the batched step or of one point on a learning-rate curve both share?"""
    from gensim.models import Word2Vec as GensimWord2Vec

    from toolkit.models.text.word2vec import WordVectors, train_word2vec

    rows = []
    for alpha in (float(a) for a in args.w2v_alphas.split(",")):
        accuracy = {"gensim": [], "ours": []}
        for seed in range(1, args.w2v_seeds + 1):
            model = GensimWord2Vec(sentences, vector_size=args.w2v_dim, sg=1, epochs=args.w2v_epochs, workers=2,
                                   seed=seed, alpha=alpha, **common)
            accuracy["gensim"].append(WordVectors(model.wv.index_to_key, model.wv.vectors)
                                      .evaluate_analogies(questions)["accuracy"])
            ours = train_word2vec(sentences, dim=args.w2v_dim, epochs=args.w2v_epochs, batch_size=args.w2v_batch,
                                  negative_pool=args.w2v_pool or None, seed=seed, learning_rate=alpha, **common)
            accuracy["ours"].append(ours.evaluate_analogies(questions)["accuracy"])
        means = {name: float(np.mean(values)) for name, values in accuracy.items()}
        print(f"word2vec alpha {alpha}: {accuracy}", flush=True)
        rows.append([alpha] + [f"{means[n]:.4f} ± {np.std(accuracy[n]):.4f}" for n in ("gensim", "ours")]
                    + [f"{means['ours'] / max(means['gensim'], 1e-9):.3f}"])
    return rows


ANCHOR_GENSIM = 0.112  # the gensim analogy accuracy on 2.3M tokens, 20 epochs


def full_run(args):
    """The anchor run (whole corpus or 20+ epochs) writes its own section beside the default comparison."""
    return args.w2v_tokens > 1_000_000 or args.w2v_epochs >= 20


def glove(args, sentences):
    from toolkit.data.text_samples import questions_words_path
    from toolkit.models.text.glove import train_glove

    vectors = train_glove(sentences, dim=args.w2v_dim, window=args.glove_window, min_count=5,
                          epochs=args.glove_epochs, batch_size=args.glove_batch)
    result = vectors.evaluate_analogies(questions_words_path())
    return {"row": ["toolkit GloVe (Keras, AdaGrad)", f"{result['accuracy']:.4f} ({result['questions']:,} q)",
                    f"{vectors.stats['words_per_second']:,.0f}", f"{vectors.stats['seconds']:.0f}"],
            "accuracy": result["accuracy"], "nonzero": vectors.stats["nonzero"],
            "losses": [vectors.stats["losses"][0], vectors.stats["losses"][-1]],
            "nearest": {w: [x for x, _ in vectors.most_similar(w, k=5)] for w in ("king", "water", "computer")
                        if w in vectors}}


def seq2seq(args):
    from toolkit.data.text_samples import django_parallel
    from toolkit.metrics.bleu import corpus_bleu
    from toolkit.models.text.seq2seq import Translator

    pairs = django_parallel("fr")
    order = np.random.default_rng(0).permutation(len(pairs))
    cut = int(0.85 * len(pairs))
    train = [pairs[i] for i in order[:cut]]
    test = [pairs[i] for i in order[cut:]]
    translator = Translator([s for s, _ in train], [t for _, t in train], units=128, embedding_dim=64, max_length=12)
    began = time.perf_counter()
    translator.fit(epochs=args.s2s_epochs, batch_size=32)
    seconds = time.perf_counter() - began
    references = translator.normalize([t for _, t in test])
    greedy = translator.translate([s for s, _ in test])
    beam = translator.translate([s for s, _ in test], beam_width=4)
    train_refs = translator.normalize([t for _, t in train[:len(test)]])
    train_bleu = corpus_bleu(train_refs, translator.translate([s for s, _ in train[:len(test)]]))
    examples = [(s, t, g) for (s, t), g in list(zip(test, greedy))[:6]]
    return {"pairs": (len(train), len(test)), "seconds": seconds, "greedy": corpus_bleu(references, greedy),
            "beam": corpus_bleu(references, beam), "train_bleu": train_bleu, "examples": examples}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="classifiers,word2vec,seq2seq",
                        help="comma list; 'reference' alone writes the scikit-learn reference section")
    parser.add_argument("--w2v-tokens", type=int, default=600_000,
                        help="word2vec corpus size (tokens, lee_background then wordnet glosses then fortunes); "
                             "over 1M, or --w2v-epochs 20+, is the anchor run: section text-word2vec-full")
    parser.add_argument("--w2v-epochs", type=int, default=5)
    parser.add_argument("--w2v-dim", type=int, default=100)
    parser.add_argument("--w2v-seeds", type=int, default=1,
                        help="train both implementations once per seed 1..N; the table shows means (± std)")
    parser.add_argument("--w2v-batch", type=int, default=512, help="centre words per sparse SGD step (ours)")
    parser.add_argument("--w2v-pool", type=int, default=64,
                        help="ours: noise words per SGD step shared by all its centre words (0: 10 per centre word)")
    parser.add_argument("--w2v-alphas", default="",
                        help="comma-separated starting learning rates: both implementations at each (seeds as "
                             "--w2v-seeds), a sensitivity table beside the default-rate comparison")
    parser.add_argument("--glove-epochs", type=int, default=15, help="0 skips GloVe")
    parser.add_argument("--glove-window", type=int, default=10)
    parser.add_argument("--glove-batch", type=int, default=8192)
    parser.add_argument("--s2s-epochs", type=int, default=40)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    command = "python -m benchmarks.text " + " ".join(argv if argv is not None else sys.argv[1:])
    load = os.getloadavg()[0]
    md = [f"Command: `{command.strip()}` · {machine()} · load average at start {load:.1f} on 2 cores "
          "(shared with other jobs: times and words/s are pessimistic)."]
    if "classifiers" in parts:
        rows = classifiers(args)
        md += ["", "### Classifiers: 5-fold cross-validated accuracy (apps.text_classifier, fold test never seen)", "",
               table(["data", "model", "accuracy (mean ± std)", "seconds"], rows),
               "", "Options: " + "; ".join(f"{k}: {v}" for k, v in MODEL_OPTIONS.items())]
    w2v_md = []
    if "word2vec" in parts:
        w2v = word2vec(args)
        print(w2v, flush=True)
        rows = w2v["rows"] + ([w2v["glove"]["row"]] if w2v["glove"] else [])
        speed_ok, accuracy_ok = w2v["speed_ratio"] >= 1.0, w2v["accuracy_ratio"] >= 0.95
        title = ("## Text: word2vec (ours vs gensim) on the whole corpus, the issue's anchor" if full_run(args) else
                 "## Text: word2vec (ours vs gensim) and GloVe, same corpus, same run")
        w2v_md = [title, "", md[0] + f" Load average at the end {os.getloadavg()[0]:.1f}.", "",
                  f"Corpus: {w2v['corpus']}. Settings: {w2v['settings']}; ours: one compiled graph per epoch, "
                  f"{args.w2v_batch} centre words per sparse SGD step ({w2v['steps']:,} steps, the loop XLA-compiled), "
                  + (f"a pool of {args.w2v_pool} noise words per step shared by all its centre words (weight pairs x "
                     f"5 / {args.w2v_pool}). " if args.w2v_pool else "each centre's pairs sharing 10 negatives. ")
                  + "words/s = corpus tokens x epochs / training seconds; both timings leave out vocabulary "
                  f"building (gensim's build_vocab took {w2v['gensim_vocab_seconds']:.1f} s) and ours include "
                  "tracing and XLA compilation (gensim counts its tokens before min_count, ours after: slightly in "
                  "gensim's favour).", "",
                  table(["implementation", "analogy accuracy (questions-words.txt, in-vocab)", "words/s", "seconds"],
                        rows), "",
                  f"Targets: words/s ratio ours/gensim **{w2v['speed_ratio']:.3f}** (target >= 1.0: "
                  f"{'met' if speed_ok else 'missed'}); analogy-accuracy ratio **{w2v['accuracy_ratio']:.3f}** "
                  f"(target >= 0.95: {'met' if accuracy_ok else 'missed'}). gensim's own evaluate_word_analogies "
                  f"on its vectors (last seed): {w2v['gensim_native_accuracy']:.4f} (same protocol as ours)."
                  + (" Per seed (accuracy, words/s), gensim: " + ", ".join(
                      f"({a:.4f}, {w:,.0f})" for a, w, _ in w2v["per_seed"]["gensim"]) + "; ours: " + ", ".join(
                      f"({a:.4f}, {w:,.0f})" for a, w, _ in w2v["per_seed"]["ours"]) + "."
                     if args.w2v_seeds > 1 else ""), "",
                  f"Nearest words, ours: {w2v['nearest']}; gensim: {w2v['gensim_nearest']}."]
        if w2v["alpha_sweep"]:
            w2v_md += ["", f"Starting learning rate (alpha -> 1e-4, linear), both implementations, same corpus and "
                       f"epochs, analogy accuracy over seeds 1-{args.w2v_seeds} (accuracy only: these runs are not "
                       "timed):", "", table(["alpha", "gensim", "toolkit (Keras)", "ratio ours/gensim"],
                                            w2v["alpha_sweep"])]
        if w2v["glove"]:
            g = w2v["glove"]
            w2v_md += ["", f"GloVe: window {args.glove_window} (1/d weighting), {g['nonzero']:,} non-zero X_ij, "
                       f"{args.glove_epochs} epochs of AdaGrad (lr 0.05, batches of {args.glove_batch}), x_max 100, "
                       f"alpha 0.75, vectors w + w~; J fell from {g['losses'][0]:,.0f} (after epoch 1) to "
                       f"{g['losses'][1]:,.0f}. Nearest words: {g['nearest']}. Its words/s counts corpus tokens x "
                       "epochs like word2vec's but the work per epoch is one pass over the non-zero counts."]
        if full_run(args):
            anchor = 0.9 * ANCHOR_GENSIM
            short = (f" The three sources hold {w2v['tokens']:,} tokens in all, short of the requested "
                     f"{args.w2v_tokens:,}." if w2v["tokens"] < args.w2v_tokens else "")
            w2v_md += ["", f"Anchor (the issue: 2.3M tokens, 20 epochs, gensim {ANCHOR_GENSIM}): ours "
                       f"{w2v['ours_accuracy']:.4f} against >= {anchor:.4f} (within 10% of {ANCHOR_GENSIM}): "
                       f"**{'met' if w2v['ours_accuracy'] >= anchor else 'missed'}**.{short}"]
        else:
            w2v_md += ["", "The issue's anchor (2.3M tokens, 20 epochs, gensim 0.112): `--w2v-tokens 2300000 "
                       "--w2v-epochs 20 --glove-epochs 0`, written to its own section (text-word2vec-full)."]
    if "seq2seq" in parts:
        s2s = seq2seq(args)
        print(s2s, flush=True)
        md += ["", "### Seq2seq (biGRU encoder, GRU decoder, Bahdanau attention): Django .po en->fr", "",
               f"{s2s['pairs'][0]} training / {s2s['pairs'][1]} held-out pairs (random 85/15 split), "
               f"{args.s2s_epochs} epochs ({s2s['seconds']:.0f} s). BLEU-4 (keras-hub, corpus level) against "
               "lower-cased, punctuation-stripped references (what the model emits):", "",
               table(["split", "decoding", "BLEU"], [["held-out", "greedy", f"{s2s['greedy']:.4f}"],
                                                     ["held-out", "beam 4", f"{s2s['beam']:.4f}"],
                                                     ["training (same size)", "greedy", f"{s2s['train_bleu']:.4f}"]]),
               "", "Held-out examples (source | reference | greedy): " +
               " / ".join(f"{s} | {t} | {g}" for s, t, g in s2s["examples"]),
               "", "Honest reading: a few hundred short UI strings (many single words, language names) are far too "
               "little parallel text; the held-out BLEU measures memorised vocabulary, not translation."]
    if parts == ["reference"]:  # its own section, so it can run beside (or after) the main one
        md = [f"Command: `{command.strip()}` · {machine()}", "",
              table(["data", "model", "5-fold accuracy (mean ± std)"], sklearn_reference())]
        text = "\n".join(md)
        print(text)
        if not args.no_write:
            write_section("text-reference", "### Text: scikit-learn reference for the 5-fold CV\n\n" + text)
        return
    if w2v_md:
        print("\n".join(w2v_md))
        if not args.no_write:
            write_section("text-word2vec-full" if full_run(args) else "text-word2vec", "\n".join(w2v_md))
    if len(md) == 1:  # only word2vec ran: leave the classifier / seq2seq section as it is
        return
    text = "\n".join(md)
    print(text)
    if not args.no_write:
        write_section("text", "## Text\n\n" + text)


if __name__ == "__main__":
    main()
