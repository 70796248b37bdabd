"""Word2vec trained with Keras: skip-gram with negative sampling and CBOW (SEED_CATALOGUE section 6).

- Vocabulary with `min_count`; frequent-word subsampling (word2vec's keep probability
  (sqrt(f / (s T)) + 1) (s T) / f, redrawn every epoch); a dynamic window (each centre word draws its
  window uniformly from 1..window, as in word2vec / gensim, so near words count more).
- Negative sampling: K noise words per positive pair from P_n(w) proportional to count(w)^0.75, drawn inside
  the training graph from a unigram table (word2vec's trick, `table_size` entries).
- Loss: -log sigma(u_o . v_c) - sum_k log sigma(-u_k . v_c), plain SGD per pair (summed over a step) with a
  linearly decaying learning rate (word2vec's schedule: 0.025 -> 0.0001, by words processed).
- Skip-gram runs each epoch as compiled graphs (`_skipgram_trainer`; the training loop XLA-compiled):
  subsampling, the dynamic window, pair building and negative draws happen in the graph, the gradients are
  written out and applied as sparse scatter-adds to W and C (no tape, no dense optimizer state). By default each
  step's centre words share a pool of 64 noise words, each weighted pairs x K / 64 (the same expected gradient,
  dense matmuls instead of per-pair gathers); `negative_pool=None` gives each centre word 10 shared noise words
  (Ji et al. 2016's negative sharing), and with `shared_negatives=None` too, K private negatives per pair.
- CBOW: v = mean of the context vectors (padding masked), the same loss, trained with Keras `fit` over
  vectorised numpy examples per epoch.

`WordVectors` (toolkit.models.text.word_vectors) answers nearest words, analogies, the `questions-words.txt`
accuracy and writes projector TSVs.
"""

from __future__ import annotations

import collections
import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from toolkit.models.text.word_vectors import (WordVectors, embedding_matrix, load_word_vectors,  # noqa: F401
                                              pretrained_embedding)

PAD = "<pad>"


def noise_distribution(counts, power: float = 0.75):
    """P_n(w) = count(w)^power / sum_v count(v)^power.

    Examples:
    >>> noise_distribution([0.99, 0.01]).round(3).tolist()   # SEED_CATALOGUE oracle 40 (corrected)
    [0.969, 0.031]
    """
    weights = np.asarray(counts, dtype="float64") ** power
    return weights / weights.sum()


def keep_probabilities(counts, sample: float = 1e-3):
    """word2vec's subsampling keep probability per word (capped at 1); `sample=0` keeps everything."""
    counts = np.asarray(counts, dtype="float64")
    if not sample:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / np.maximum(counts, 1.0))


@dataclasses.dataclass
class Corpus:
    """A tokenised corpus as word ids (index 0 = padding) with sentence ids, and its vocabulary."""

    words: list
    counts: np.ndarray
    ids: np.ndarray
    sentence: np.ndarray

    @classmethod
    def from_sentences(cls, sentences, min_count: int = 5, max_vocab: int | None = None):
        """`sentences`: iterable of token lists. Words rarer than `min_count` are dropped (as in gensim)."""
        sentences = [list(s) for s in sentences]
        frequency = collections.Counter(w for s in sentences for w in s)
        kept = sorted((w for w, c in frequency.items() if c >= min_count), key=lambda w: (-frequency[w], w))
        if max_vocab:
            kept = kept[:max_vocab]
        if not kept:
            raise ValueError(f"no word occurs at least min_count={min_count} times")
        index = {w: i + 1 for i, w in enumerate(kept)}
        ids, sentence = [], []
        for number, tokens in enumerate(sentences):
            row = [index[w] for w in tokens if w in index]
            ids.extend(row)
            sentence.extend([number] * len(row))
        counts = np.array([0] + [frequency[w] for w in kept], dtype="int64")
        return cls([PAD, *kept], counts, np.asarray(ids, "int32"), np.asarray(sentence, "int32"))

    @property
    def num_tokens(self) -> int:
        return len(self.ids)


def skipgram_pairs(corpus: Corpus, window: int = 5, sample: float = 1e-3, rng=None):
    """One epoch of (centre, context) pairs: subsampled, dynamic window, within sentences. int32 `[P]` each."""
    rng = rng or np.random.default_rng(0)
    keep = rng.random(corpus.num_tokens) < keep_probabilities(corpus.counts, sample)[corpus.ids]
    ids, sentence = corpus.ids[keep], corpus.sentence[keep]
    reduced = rng.integers(1, window + 1, size=len(ids))
    centres, contexts = [], []
    for offset in range(1, window + 1):
        same = sentence[offset:] == sentence[:-offset]
        left = same & (reduced[:-offset] >= offset)      # centre i, context i + offset
        right = same & (reduced[offset:] >= offset)      # centre i + offset, context i
        centres += [ids[:-offset][left], ids[offset:][right]]
        contexts += [ids[offset:][left], ids[:-offset][right]]
    centres, contexts = np.concatenate(centres), np.concatenate(contexts)
    order = rng.permutation(len(centres))
    return centres[order], contexts[order]


def cbow_examples(corpus: Corpus, window: int = 5, sample: float = 1e-3, rng=None):
    """One epoch of CBOW examples: `(contexts int32 [P, 2 window] padded with 0, targets int32 [P])`."""
    rng = rng or np.random.default_rng(0)
    keep = rng.random(corpus.num_tokens) < keep_probabilities(corpus.counts, sample)[corpus.ids]
    ids, sentence = corpus.ids[keep], corpus.sentence[keep]
    n = len(ids)
    reduced = rng.integers(1, window + 1, size=n)
    contexts = np.zeros((n, 2 * window), dtype="int32")
    positions = np.arange(n)
    for slot, offset in enumerate([o for d in range(1, window + 1) for o in (-d, d)]):
        other = positions + offset
        valid = (other >= 0) & (other < n) & (np.abs(offset) <= reduced)
        valid[valid] &= sentence[other[valid]] == sentence[positions[valid]]
        contexts[valid, slot] = ids[other[valid]]
    has_context = contexts.any(axis=1)
    order = rng.permutation(int(has_context.sum()))
    return contexts[has_context][order], ids[has_context][order]


@keras.saving.register_keras_serializable(package="toolkit")
class Word2Vec(keras.Model):
    """Two tables, W (input / centre vectors) and C (output / context vectors), both `[V, dim]`.

    Inputs `(centre_or_context_ids, target_ids)`: `[B]` centre ids (skip-gram) or `[B, 2w]` context ids (CBOW,
    0 = padding); `[B]` positive target ids. Returns logits `[B, 1 + K]`: the positive, then K negatives
    drawn from `noise_table` in the graph.

    Examples:
    >>> model = Word2Vec(vocabulary_size=5, dim=4, negative=2)
    >>> logits = model((np.array([1, 2, 3]), np.array([2, 3, 4])))
    >>> tuple(logits.shape), bool(np.all(logits.numpy() == 0))   # C starts at zero (as in word2vec)
    ((3, 3), True)
    >>> cbow = Word2Vec(vocabulary_size=5, dim=4, negative=2, cbow=True)   # [B, 2w] contexts, 0 = padding
    >>> tuple(cbow((np.array([[1, 2, 0, 0]]), np.array([3]))).shape)
    (1, 3)
    >>> Word2Vec.from_config(model.get_config()).dim
    4

    The noise table is kept in the config as repeat counts per id (`noise_counts`: V numbers, not the
    10-million-entry table), so a reloaded model draws its negatives from the same distribution:
    >>> table = np.array([1, 1, 1, 2, 4])
    >>> Word2Vec(vocabulary_size=5, dim=4, noise_table=table).get_config()["noise_counts"]
    [0, 3, 1, 0, 1]
    >>> Word2Vec.from_config(Word2Vec(5, 4, noise_table=table).get_config()).noise_table.numpy().tolist()
    [1, 1, 1, 2, 4]
    """

    def __init__(self, vocabulary_size: int, dim: int = 100, negative: int = 5, cbow: bool = False,
                 noise_table=None, noise_counts=None, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.dim, self.negative, self.cbow = int(vocabulary_size), int(dim), int(negative), cbow
        init = keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim)  # word2vec's init; C starts at 0
        self.target_embedding = keras.layers.Embedding(vocabulary_size, dim, embeddings_initializer=init, name="w")
        self.context_embedding = keras.layers.Embedding(vocabulary_size, dim, embeddings_initializer="zeros", name="c")
        if noise_table is None and noise_counts is not None:
            noise_table = np.repeat(np.arange(len(noise_counts)), np.asarray(noise_counts, dtype="int64"))
        self.noise_table = tf.constant(np.asarray(noise_table if noise_table is not None else
                                                  np.arange(1, vocabulary_size), dtype="int32"))

    def call(self, inputs):
        source, target = inputs
        if self.cbow:
            vectors = self.target_embedding(source)
            mask = keras.ops.cast(keras.ops.expand_dims(source > 0, -1), vectors.dtype)
            hidden = keras.ops.sum(vectors * mask, axis=1) / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)
        else:
            hidden = self.target_embedding(source)
        batch = tf.shape(target)[0]
        picks = tf.random.uniform([batch, self.negative], maxval=tf.shape(self.noise_table)[0], dtype=tf.int32)
        candidates = tf.concat([tf.expand_dims(tf.cast(target, tf.int32), 1), tf.gather(self.noise_table, picks)], 1)
        return tf.einsum("bd,bkd->bk", hidden, self.context_embedding(candidates))

    def get_config(self):
        counts = np.bincount(self.noise_table.numpy(), minlength=self.vocabulary_size)
        return {"vocabulary_size": self.vocabulary_size, "dim": self.dim, "negative": self.negative,
                "cbow": self.cbow, "noise_counts": counts.tolist(), "name": self.name}


def _sum_loss(labels, logits):
    # Negative-sampling loss, summed over pairs (per-pair SGD steps as in word2vec, applied in a batch).
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, logits.dtype), logits=logits))


def window_row_gradients(g, h, offsets, window: int):
    """`[N + 2 window, D]`: row r sums g[i, j] h[i] over every centre i and offset o_j with i + window + o_j = r.

    The context-row gradients of a chunk (`g`: `[N, len(offsets)]`, `h`: `[N, D]`), read as shifted slices of g and
    h padded once; a pad per offset made one slow concatenate fusion on XLA:CPU (a third of each step).

    Examples:
    >>> g = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")     # 2 centres, offsets -1 and +1
    >>> window_row_gradients(g, np.ones([2, 1], "float32"), [-1, 1], 1).numpy()[:, 0].tolist()
    [1.0, 3.0, 2.0, 4.0]
    """
    rows = int(h.shape[0]) + 2 * window
    h_pad = tf.pad(h, [[2 * window, 2 * window], [0, 0]])
    g_pad = tf.pad(g, [[2 * window, 2 * window], [0, 0]])
    return tf.add_n([g_pad[window - o:window - o + rows, j, None] * h_pad[window - o:window - o + rows]
                     for j, o in enumerate(offsets)])


def _skipgram_trainer(model, corpus: Corpus, window: int, sample: float, start: float, minimum: float,
                      epochs: int, chunk: int, shared: int | None, seed: int = 1, pool: int | None = None):
    """One epoch of skip-gram with negative sampling as two compiled functions (the loop XLA-compiled).

    `prepare` (TF): subsampling (keep probability per token, redrawn each epoch) and a dynamic window per kept
    token, padded back to the corpus length so every shape is static. `train` (XLA, `jit_compile=True`): a
    `tf.while_loop` over chunks of `chunk` kept centre words; each centre's 2 x window context slots (invalid ones
    weigh 0) read from the chunk's window of C rows, gathered once (`chunk + 2 window` rows: context offset o of
    centre i is row i + window + o, so the positive scores and both gradients are shifted slices, and C gets one
    scatter row per window slot), noise words from the unigram^0.75 table, the gradients of
    -log s(u_o.v) - sum log s(-u_k.v) written out (gathers, matmuls, no tape) and applied as sparse scatter-adds
    to W and C. The learning rate decays
    linearly with the words processed, like gensim's `alpha -> min_alpha`. Written by hand: neither Keras'
    optimizers (dense, per batch) nor a library op gives an SGNS step with sparse in-place updates.

    `shared=S`: each centre word draws S noise words shared by its pairs, each weighted (pairs x K / S): the same
    expected gradient as K private negatives per pair with fewer rows to gather and scatter (Ji et al. 2016's
    negative sharing). `shared=None`: K private negatives per pair (word2vec's sampling). `pool=M` (overrides
    both): M noise words per step shared by every centre of the chunk, each weighted pairs x K / M, scored and
    updated with dense matmuls (`[chunk, D] x [D, M]`): M gathered and scattered rows per step.
    """
    ids, sentence = tf.constant(corpus.ids), tf.constant(corpus.sentence)
    tokens = corpus.num_tokens
    keep_p = tf.constant(keep_probabilities(corpus.counts, sample), tf.float32)
    table = model.noise_table
    table_size = int(table.shape[0])
    w, c = model.target_embedding.embeddings.value, model.context_embedding.embeddings.value
    dim, negative = model.dim, model.negative
    offsets = [o for d in range(1, window + 1) for o in (-d, d)]
    total = float(max(1, epochs * tokens))

    @tf.function(autograph=False)
    def prepare(epoch):
        keep = tf.random.uniform([tokens]) < tf.gather(keep_p, ids)
        n = tf.reduce_sum(tf.cast(keep, tf.int32))
        pad = tokens - n
        kept = tf.concat([tf.boolean_mask(ids, keep), tf.zeros([pad], tf.int32)], 0)
        kept_sentence = tf.concat([tf.boolean_mask(sentence, keep), -tf.ones([pad], tf.int32)], 0)
        origin = tf.concat([tf.boolean_mask(tf.range(tokens), keep), tf.fill([pad], tokens - 1)], 0)  # for the lr
        reduced = tf.random.uniform([tokens], 1, window + 1, dtype=tf.int32)
        return epoch, kept, kept_sentence, origin, reduced, n

    @tf.function(jit_compile=True, autograph=False)
    def train(epoch, kept, kept_sentence, origin, reduced, n):
        def body(step, loss, pairs):
            first = step * chunk
            position = first + tf.range(chunk)
            inside = position < n
            position = tf.minimum(position, tokens - 1)
            # The chunk's window: positions first - w .. first + chunk + w, gathered once (row i + w + o is centre
            # i's context at offset o), so no [chunk, 2w, D] copy of context rows is made or scattered.
            around = first - window + tf.range(chunk + 2 * window)
            near = tf.clip_by_value(around, 0, tokens - 1)
            near_id, near_sentence = tf.gather(kept, near), tf.gather(kept_sentence, near)
            near_ok = (around >= 0) & (around < n)
            centre, centre_sentence = tf.gather(kept, position), tf.gather(kept_sentence, position)
            reduced_here = tf.gather(reduced, position)
            progress = tf.cast(epoch * tokens + tf.gather(origin, first), tf.float32) / total
            lr = tf.maximum(minimum, start - (start - minimum) * progress)
            h, u = tf.gather(w, centre), tf.gather(c, near_id)           # [N, D], [N + 2w, D]
            real, context, positive = [], [], []
            for o in offsets:
                window_row = slice(window + o, window + o + chunk)
                real.append(inside & near_ok[window_row] & (abs(o) <= reduced_here)
                            & (near_sentence[window_row] == centre_sentence))
                context.append(near_id[window_row])
                positive.append(tf.reduce_sum(h * u[window_row], 1))
            real = tf.cast(tf.stack(real, 1), tf.float32)                   # [N, 2w]
            context, positive = tf.stack(context, 1), tf.stack(positive, 1)
            g_positive = (1.0 - tf.sigmoid(positive)) * lr * real        # ascent direction of the log-likelihood
            grad_h = tf.add_n([g_positive[:, j, None] * u[window + o:window + o + chunk]
                               for j, o in enumerate(offsets)])
            grad_u = window_row_gradients(g_positive, h, offsets, window)  # [N + 2w, D], one row per slot
            shape = [pool] if pool else [chunk, shared] if shared else [chunk, 2 * window, negative]
            draws = tf.random.stateless_uniform(shape, tf.stack([seed + epoch, step]), maxval=table_size,
                                                dtype=tf.int32)
            noise = tf.gather(table, draws)
            vectors = tf.gather(c, noise)                     # [M, D], [N, S, D] or [N, 2w, K, D]
            if pool:  # every centre of the chunk scored against the same M noise words: dense matmuls
                scores = tf.matmul(h, vectors, transpose_b=True)                              # [N, M]
                # a noise word equal to a pair's target does not count for that pair (word2vec skips it)
                differs = tf.cast(context[:, :, None] != noise[None, None, :], tf.float32)   # [N, 2w, M]
                weight = tf.reduce_sum(real[:, :, None] * differs, 1) * (negative / pool)
                g_noise = -tf.sigmoid(scores) * weight * lr
                grad_h += tf.matmul(g_noise, vectors)
                noise_updates = tf.matmul(g_noise, h, transpose_a=True)                      # [M, D]
            elif shared:
                scores = tf.einsum("nd,nsd->ns", h, vectors)
                weight = tf.einsum("nj,njs->ns", real, tf.cast(noise[:, None, :] != context[:, :, None],
                                                               tf.float32)) * (negative / shared)
                g_noise = -tf.sigmoid(scores) * weight * lr
                grad_h += tf.einsum("ns,nsd->nd", g_noise, vectors)
                noise_updates = tf.reshape(g_noise[..., None] * h[:, None, :], [-1, dim])
            else:
                scores = tf.einsum("nd,njkd->njk", h, vectors)
                weight = real[:, :, None] * tf.cast(noise != context[:, :, None], tf.float32)
                g_noise = -tf.sigmoid(scores) * weight * lr
                grad_h += tf.einsum("njk,njkd->nd", g_noise, vectors)
                noise_updates = tf.reshape(g_noise[..., None] * h[:, None, None, :], [-1, dim])
            w.scatter_add(tf.IndexedSlices(grad_h, centre))
            c.scatter_add(tf.IndexedSlices(tf.concat([grad_u, noise_updates], 0),
                                           tf.concat([near_id, tf.reshape(noise, [-1])], 0)))
            step_loss = tf.reduce_sum(real * tf.nn.softplus(-positive)) + tf.reduce_sum(weight * tf.nn.softplus(scores))
            return step + 1, loss + step_loss, pairs + tf.reduce_sum(tf.cast(real, tf.int32))

        steps = (n + chunk - 1) // chunk
        _, loss, pairs = tf.while_loop(lambda s, *_: s < steps, body, (tf.constant(0), tf.constant(0.0), tf.constant(0)))
        return loss / tf.maximum(tf.cast(pairs, tf.float32), 1.0), pairs, steps

    return lambda epoch: train(*prepare(epoch))


def train_word2vec(sentences, dim: int = 100, window: int = 5, negative: int = 5, min_count: int = 5,
                   epochs: int = 5, sample: float = 1e-3, cbow: bool = False, learning_rate: float | None = None,
                   min_learning_rate: float = 1e-4, batch_size: int = 512, table_size: int = 10_000_000,
                   seed: int = 1, max_vocab: int | None = None, steps_per_execution: int = 64, verbose: int = 0,
                   shared_negatives: int | None = 10, negative_pool: int | None = 64):
    """Trains word2vec on tokenised `sentences`; returns `WordVectors` (W, the input vectors) with `.stats`.

    Args:
        dim, window, negative, min_count, epochs, sample: as in word2vec / gensim.
        cbow: CBOW instead of skip-gram.
        learning_rate: start of the linear decay (default 0.025 skip-gram, 0.05 CBOW, word2vec's).
        batch_size: skip-gram: centre words per sparse SGD step (each gives up to 2 x window pairs), the whole
            epoch running as one compiled graph (`_skipgram_trainer`); CBOW: examples per Keras `fit` step.
        shared_negatives: skip-gram: this many noise words per centre word, shared by its context pairs (each
            weighted pairs x K / shared: the same expected gradient as K private negatives per pair, fewer rows to
            gather and scatter); `None`: K private negatives per pair, word2vec's exact sampling.
        negative_pool: skip-gram: if set, this many noise words per SGD step shared by all its centre words (each
            weighted pairs x K / pool; dense matmuls instead of per-centre gathers); overrides shared_negatives.

    Examples:
    >>> sentences = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "ran"]] * 20
    >>> vectors = train_word2vec(sentences, dim=8, window=2, min_count=1, epochs=1, sample=0, table_size=1000,
    ...                          batch_size=64)   # sample=0: subsampling would drop most of a tiny corpus
    >>> vectors.stats["vocabulary"], vectors.stats["tokens"], vectors.stats["steps"]   # 180 centre words / 64
    (6, 180, 3)
    >>> len(vectors.most_similar("cat", k=3))
    3
    """
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    corpus = Corpus.from_sentences(sentences, min_count=min_count, max_vocab=max_vocab)
    probabilities = noise_distribution(corpus.counts[1:])
    table = 1 + np.repeat(np.arange(len(probabilities)), np.round(probabilities * table_size).astype("int64"))
    model = Word2Vec(len(corpus.words), dim, negative, cbow, noise_table=table)
    start = learning_rate or (0.05 if cbow else 0.025)
    refusal = (f"no training {'examples' if cbow else 'pairs'} left from {corpus.num_tokens} tokens "
               f"({len(corpus.words) - 1} words with min_count={min_count}) after subsampling with sample={sample}: "
               "pass sample=0 (or a smaller sample) for a small corpus, or lower min_count")
    if not np.any(corpus.sentence[1:] == corpus.sentence[:-1]):  # no sentence keeps two words: no pair at all
        raise ValueError(refusal)
    began, words_seen, steps, losses = time.perf_counter(), 0, 0, []
    if not cbow:
        model((np.zeros([1], "int32"), np.zeros([1], "int32")))  # builds both tables
        run_epoch = _skipgram_trainer(model, corpus, window, sample, start, min_learning_rate, epochs, batch_size,
                                      shared_negatives, seed, negative_pool)
        pairs = 0
        for epoch in range(epochs):
            loss, epoch_pairs, epoch_steps = run_epoch(tf.constant(epoch))
            pairs, steps, words_seen = pairs + int(epoch_pairs), steps + int(epoch_steps), words_seen + corpus.num_tokens
            losses.append(float(loss))
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}: {int(epoch_pairs):,} pairs, mean loss {losses[-1]:.4f}")
        if pairs == 0:  # nothing to learn from: say why instead of returning the initial vectors
            raise ValueError(refusal)
    else:
        first = cbow_examples(corpus, window, sample, rng)
        if len(first[1]) == 0:
            raise ValueError(refusal)
        total_steps = max(1, epochs * -(-len(first[1]) // batch_size))
        schedule = keras.optimizers.schedules.PolynomialDecay(start, total_steps, min_learning_rate)
        model.compile(optimizer=keras.optimizers.SGD(schedule), loss=_sum_loss,
                      steps_per_execution=steps_per_execution)
        labels = np.zeros((1, 1 + negative), "float32")
        labels[0, 0] = 1.0
        for epoch in range(epochs):
            source, target = first if epoch == 0 else cbow_examples(corpus, window, sample, rng)
            y = np.broadcast_to(labels, (len(target), 1 + negative))
            data = tf.data.Dataset.from_tensor_slices(((source, target), y)).batch(batch_size).prefetch(2)
            history = model.fit(data, epochs=1, verbose=verbose)
            losses.append(float(history.history["loss"][-1]))
            words_seen += corpus.num_tokens
        steps = int(model.optimizer.iterations)
    seconds = time.perf_counter() - began
    vectors = WordVectors(corpus.words[1:], model.target_embedding.embeddings.numpy()[1:])
    vectors.stats = {"seconds": seconds, "words_per_second": words_seen / max(seconds, 1e-9),
                     "tokens": corpus.num_tokens, "vocabulary": len(corpus.words) - 1, "epochs": epochs,
                     "steps": steps, "losses": losses}
    vectors.model, vectors.counts = model, corpus.counts[1:]
    return vectors
