"""GloVe (Pennington et al. 2014) trained with Keras: co-occurrence counts, weighted least squares, AdaGrad
(SEED_CATALOGUE section 6, F3:11695-11795).

- Counts X_ij: for every word pair within `window` words of each other in a sentence, add 1/d, d = their
  distance (GloVe's `cooccur` weighting, so near words count more), in both directions (symmetric, as GloVe's
  default).
- Objective J = sum_{X_ij > 0} f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 with f(x) = (x / x_max)^alpha for
  x < x_max, else 1 (x_max = 100, alpha = 0.75; f(50) = 0.595). GloVe's C code minimises J / 2 (its gradient is
  f * diff); so do we.
- AdaGrad as GloVe uses it: learning rate 0.05, squared-gradient accumulators starting at 1 (Keras' `Adagrad` with
  `initial_accumulator_value=1`; Keras adds g^2 before dividing, GloVe after, a second-order difference), every
  non-zero X_ij an example, shuffled each epoch, parameters initialised uniform in +-0.5 / dim as GloVe does.
- Final embedding w + w~ (GloVe's `model = 2` output).
"""

from __future__ import annotations

import time

import keras
import numpy as np

from toolkit.models.text.word2vec import Corpus, WordVectors


def weighting(x, x_max: float = 100.0, alpha: float = 0.75):
    """f(x) = (x / x_max)^alpha below x_max, else 1.

    Examples:
    >>> round(float(weighting(50.0)), 3), float(weighting(100.0)), float(weighting(250.0)), float(weighting(0.0))
    (0.595, 1.0, 1.0, 0.0)
    """
    x = np.asarray(x, dtype="float64")
    return np.where(x < x_max, (x / x_max) ** alpha, 1.0)


def cooccurrence(corpus: Corpus, window: int = 10):
    """Sparse symmetric counts with 1/d weighting: `(rows, cols, values)`, ids as in `corpus` (0 = padding unused).

    Examples:
    >>> corpus = Corpus.from_sentences([["a", "b", "c"]], min_count=1)
    >>> rows, cols, values = cooccurrence(corpus, window=2)
    >>> sorted((corpus.words[i], corpus.words[j], float(x)) for i, j, x in zip(rows, cols, values))[:3]
    [('a', 'b', 1.0), ('a', 'c', 0.5), ('b', 'a', 1.0)]
    """
    ids, sentence = corpus.ids.astype("int64"), corpus.sentence
    vocabulary = len(corpus.words)
    keys, weights = [], []
    for d in range(1, window + 1):
        same = sentence[d:] == sentence[:-d]
        left, right = ids[:-d][same], ids[d:][same]
        keys += [left * vocabulary + right, right * vocabulary + left]
        weights += [np.full(2 * len(left), 1.0 / d)]
    if not keys:
        raise ValueError("cooccurrence: empty corpus")
    keys = np.concatenate(keys)
    unique, inverse = np.unique(keys, return_inverse=True)
    values = np.bincount(inverse, weights=np.concatenate(weights))
    return (unique // vocabulary).astype("int32"), (unique % vocabulary).astype("int32"), values.astype("float64")


def glove_loss(w, w_tilde, b, b_tilde, rows, cols, values, x_max: float = 100.0, alpha: float = 0.75) -> float:
    """J = sum f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 over the non-zero entries (numpy)."""
    diff = np.sum(w[rows] * w_tilde[cols], axis=1) + b[rows] + b_tilde[cols] - np.log(values)
    return float(np.sum(weighting(values, x_max, alpha) * diff ** 2))


@keras.saving.register_keras_serializable(package="toolkit")
class GloVe(keras.Model):
    """Word vectors w, context vectors w~ and their biases. `(rows, cols)` int `[B]` -> w_i . w~_j + b_i + b~_j.

    Examples:
    >>> model = GloVe(vocabulary_size=4, dim=3)
    >>> tuple(model((np.array([1, 2]), np.array([2, 3]))).shape)
    (2,)
    >>> GloVe.from_config(model.get_config()).dim
    3
    """

    def __init__(self, vocabulary_size: int, dim: int = 50, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.dim = int(vocabulary_size), int(dim)
        init = keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim)
        self.w = keras.layers.Embedding(vocabulary_size, dim, embeddings_initializer=init, name="w")
        self.w_tilde = keras.layers.Embedding(vocabulary_size, dim, embeddings_initializer=init, name="w_tilde")
        self.b = keras.layers.Embedding(vocabulary_size, 1, embeddings_initializer=init, name="b")
        self.b_tilde = keras.layers.Embedding(vocabulary_size, 1, embeddings_initializer=init, name="b_tilde")

    def call(self, inputs):
        rows, cols = inputs
        dot = keras.ops.sum(self.w(rows) * self.w_tilde(cols), axis=-1)
        return dot + keras.ops.squeeze(self.b(rows), -1) + keras.ops.squeeze(self.b_tilde(cols), -1)

    def tables(self):
        """`(w, w~, b, b~)` as numpy arrays."""
        return tuple(keras.ops.convert_to_numpy(layer.embeddings) for layer in (self.w, self.w_tilde, self.b,
                                                                                 self.b_tilde))

    def get_config(self):
        return {"vocabulary_size": self.vocabulary_size, "dim": self.dim, "name": self.name}


@keras.saving.register_keras_serializable(package="toolkit")
def _half_weighted_squares(y, prediction):  # train_glove's compile loss: saved with the compiled model
    # y = [log X_ij, f(X_ij)]: J / 2 summed over the batch (GloVe's per-entry steps, taken together).
    return 0.5 * keras.ops.sum(y[:, 1] * keras.ops.square(prediction - y[:, 0]))


def train_glove(sentences, dim: int = 50, window: int = 10, min_count: int = 5, epochs: int = 25,
                learning_rate: float = 0.05, x_max: float = 100.0, alpha: float = 0.75, batch_size: int = 4096,
                seed: int = 1, max_vocab: int | None = None, verbose: int = 0) -> WordVectors:
    """Trains GloVe on tokenised `sentences`; returns `WordVectors` of w + w~ with `.stats` (`losses`: J per epoch).

    Examples:
    >>> sentences = [["ice", "solid", "cold"], ["steam", "gas", "hot"]] * 10
    >>> vectors = train_glove(sentences, dim=4, window=2, min_count=1, epochs=3, batch_size=16)
    >>> vectors.stats["vocabulary"], vectors.stats["nonzero"], len(vectors.stats["losses"])
    (6, 12, 3)
    """
    keras.utils.set_random_seed(seed)
    corpus = Corpus.from_sentences(sentences, min_count=min_count, max_vocab=max_vocab)
    rows, cols, values = cooccurrence(corpus, window)
    model = GloVe(len(corpus.words), dim)
    model.compile(optimizer=keras.optimizers.Adagrad(learning_rate, initial_accumulator_value=1.0, epsilon=1e-8),
                  loss=_half_weighted_squares)
    y = np.stack([np.log(values), weighting(values, x_max, alpha)], axis=1).astype("float32")
    rng = np.random.default_rng(seed)
    losses, began = [], time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(values))
        model.fit((rows[order], cols[order]), y[order], batch_size=batch_size, epochs=1, shuffle=False,
                  verbose=verbose)
        losses.append(glove_loss(*(t.squeeze() if t.shape[1] == 1 else t for t in model.tables()), rows, cols,
                                 values, x_max, alpha))
    seconds = time.perf_counter() - began
    w, w_tilde, _, _ = model.tables()
    vectors = WordVectors(corpus.words[1:], (w + w_tilde)[1:])
    vectors.stats = {"seconds": seconds, "words_per_second": epochs * corpus.num_tokens / max(seconds, 1e-9),
                     "tokens": corpus.num_tokens, "vocabulary": len(corpus.words) - 1, "nonzero": len(values),
                     "epochs": epochs, "losses": losses}
    vectors.model = model
    return vectors
