"""Node classification with graph networks (GCN / message passing) and a features-only MLP baseline.

    graph = stochastic_block_model([100] * 4, p_in=0.05, p_out=0.005, feature_dim=16, seed=0)
    model = build_node_classifier(graph.features.shape[1], graph.num_classes, kind="gcn")
    result = train_node_classifier(model, graph, epochs=200)   # {"train_accuracy", "test_accuracy", ...}

Full-batch training (one "batch" = the whole graph, the loss masked to the labelled nodes): the semi-supervised
setting of Kipf & Welling (a few labels per class, the graph propagates them). networkx (karate club, les
miserables) is not installed in this environment, so the offline graph is a generated stochastic block model:
classes are blocks, edges are denser inside a block, and node features are noisy class means.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from toolkit.layers.graph import GCNConv, MessagePassing

KINDS = ("gcn", "mpnn", "mlp")


@dataclasses.dataclass
class Graph:
    """A node-classification graph: `features [N, F]`, symmetric 0/1 `adjacency [N, N]` (numpy), `labels [N]`,
    and boolean `train_mask` / `val_mask` / `test_mask`."""

    features: np.ndarray
    adjacency: np.ndarray
    labels: np.ndarray
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def sparse_adjacency(self):
        import tensorflow as tf

        return tf.sparse.from_dense(self.adjacency.astype("float32"))

    def inputs(self) -> list:
        """`[features, sparse adjacency]` as tensors (a model call cannot mix numpy arrays and SparseTensors)."""
        import tensorflow as tf

        return [tf.convert_to_tensor(self.features), self.sparse_adjacency()]


def stochastic_block_model(sizes, p_in: float, p_out: float, feature_dim: int = 16, feature_noise: float = 1.0,
                           labels_per_class: int = 10, val_per_class: int = 20, seed: int = 0) -> Graph:
    """A stochastic-block-model graph: block = class; edge probability `p_in` within a block, `p_out` across.

    Features: a random unit class mean per block plus N(0, feature_noise^2) noise per node (the larger the noise,
    the less a features-only model can do). `labels_per_class` training nodes and `val_per_class` validation
    nodes per class; the rest are test nodes.

    >>> g = stochastic_block_model([5, 5], p_in=1.0, p_out=0.0, feature_dim=3, labels_per_class=1, val_per_class=1)
    >>> int(g.adjacency.sum()), g.features.shape, int(g.train_mask.sum()), int(g.test_mask.sum())
    (40, (10, 3), 2, 6)
    """
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in sizes]
    if min(sizes) < labels_per_class + val_per_class + 1:
        raise ValueError(f"every block needs more than labels_per_class + val_per_class = "
                         f"{labels_per_class + val_per_class} nodes. Received: sizes={sizes}")
    labels = np.repeat(np.arange(len(sizes)), sizes)
    n = len(labels)
    probability = np.where(labels[:, None] == labels[None, :], p_in, p_out)
    upper = np.triu(rng.random((n, n)) < probability, k=1)
    adjacency = (upper | upper.T).astype("float32")
    means = rng.normal(size=(len(sizes), feature_dim))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    features = (means[labels] + feature_noise * rng.normal(size=(n, feature_dim))).astype("float32")
    train, val = np.zeros(n, bool), np.zeros(n, bool)
    for c in range(len(sizes)):
        nodes = rng.permutation(np.flatnonzero(labels == c))
        train[nodes[:labels_per_class]] = True
        val[nodes[labels_per_class:labels_per_class + val_per_class]] = True
    return Graph(features, adjacency, labels, train, val, ~(train | val))


def build_node_classifier(num_features: int, num_classes: int, kind: str = "gcn", hidden: int = 16,
                          num_layers: int = 2, dropout: float = 0.5, name: str | None = None) -> keras.Model:
    """`(features [N, F], adjacency [N, N] sparse)` -> class probabilities `[N, classes]`.

    kind: "gcn" (`GCNConv` layers), "mpnn" (`MessagePassing` layers, mean aggregation, then a Dense head) or
    "mlp" (Dense layers: the adjacency input is ignored, the features-only baseline).

    >>> model = build_node_classifier(3, 2, kind="gcn", hidden=4)
    >>> g = stochastic_block_model([5, 5], 1.0, 0.0, feature_dim=3, labels_per_class=1, val_per_class=1)
    >>> model(g.inputs()).shape
    TensorShape([10, 2])
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}. Received: {kind!r}")
    features = keras.Input((num_features,), name="features")
    adjacency = keras.Input((None,), sparse=True, name="adjacency")
    h = features
    for i in range(num_layers):
        last = i == num_layers - 1
        h = keras.layers.Dropout(dropout)(h)
        units, activation = (num_classes, "softmax") if last else (hidden, "relu")
        if kind == "gcn":
            h = GCNConv(units, activation=activation, name=f"gcn_{i}")(h, adjacency)
        elif kind == "mpnn" and not last:
            h = MessagePassing(units, activation="relu", aggregation="mean", name=f"message_passing_{i}")(h, adjacency)
        else:
            h = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(h)
    return keras.Model([features, adjacency], h, name=name or f"{kind}_node_classifier")


def train_node_classifier(model, graph: Graph, epochs: int = 200, learning_rate: float = 0.01,
                          weight_decay: float = 5e-4, patience: int = 50, seed: int = 0) -> dict:
    """Full-batch training on the labelled nodes, early-stopped on validation accuracy (best weights kept).

    Returns train / val / test accuracy and the epochs run.
    """
    import tensorflow as tf

    # A tape step per epoch, not `model.fit`: fit slices every input along axis 0 into batches, while the whole
    # graph (features and the sparse adjacency together) must enter each step; the loss is masked instead.
    keras.utils.set_random_seed(seed)
    x = graph.inputs()
    y = graph.labels.astype("int32")
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    train_weight = tf.constant(graph.train_mask.astype("float32"))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            loss = loss_fn(y, probabilities, sample_weight=train_weight)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def accuracy(mask):
        predicted = np.argmax(model(x, training=False), axis=-1)
        return float(np.mean(predicted[mask] == y[mask]))

    best, best_weights, waited, epoch = -1.0, model.get_weights(), 0, 0
    for epoch in range(1, epochs + 1):
        step()
        val = accuracy(graph.val_mask)
        if val > best:
            best, best_weights, waited = val, model.get_weights(), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.set_weights(best_weights)
    return {"train_accuracy": accuracy(graph.train_mask), "val_accuracy": accuracy(graph.val_mask),
            "test_accuracy": accuracy(graph.test_mask), "epochs": epoch}
