"""GCN propagation against a dense numpy D^-1/2 (A+I) D^-1/2 H W; message passing against a per-edge loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.layers.graph import GCNConv, MessagePassing, gcn_normalize


def random_graph(n=7, seed=0):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < 0.4, k=1)
    a = (upper | upper.T).astype("float32")
    a[3, :] = a[:, 3] = 0  # an isolated node: degree 1 after A + I
    return a, rng.normal(size=(n, 5)).astype("float32")


def test_gcn_matches_dense_numpy():
    a, h = random_graph()
    a_hat = a + np.eye(len(a))
    d = np.diag(1 / np.sqrt(a_hat.sum(axis=1)))
    layer = GCNConv(3, activation="relu")
    for adjacency in (tf.sparse.from_dense(a), a):  # sparse and dense adjacency
        out = layer(h, adjacency).numpy()
        w, b = layer.kernel.numpy(), layer.bias.numpy()
        np.testing.assert_allclose(out, np.maximum(d @ a_hat @ d @ h @ w + b, 0), rtol=1e-5, atol=1e-5)
    # existing self loops are replaced by I (not doubled)
    looped = a.copy()
    np.fill_diagonal(looped, 1)
    np.testing.assert_allclose(tf.sparse.to_dense(gcn_normalize(looped)), d @ a_hat @ d, atol=1e-6)
    # a pre-normalised propagation matrix with normalize=False gives the same output
    pre = GCNConv(3, activation="relu", normalize=False)
    pre.build(h.shape)
    pre.set_weights(layer.get_weights())
    np.testing.assert_allclose(pre(h, gcn_normalize(a)), layer(h, a), atol=1e-5)


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_message_passing_matches_edge_loop(aggregation):
    a, h = random_graph(seed=1)
    a = a * np.random.default_rng(2).uniform(0.5, 2.0, size=a.shape).astype("float32")  # edge weights e_uv
    layer = MessagePassing(4, message_units=6, activation="tanh", aggregation=aggregation)
    out = layer(h, tf.sparse.from_dense(a)).numpy()
    wm, bm = layer.message_fn.get_weights()
    wu, bu = layer.update_fn.get_weights()
    expected = []
    for v in range(len(a)):
        senders = np.flatnonzero(a[v])
        msgs = [np.tanh(np.concatenate([h[v], h[u], [a[v, u]]]) @ wm + bm) for u in senders]
        m = np.sum(msgs, axis=0) if msgs else np.zeros(6)
        if aggregation == "mean" and msgs:
            m = m / len(msgs)
        expected.append(np.tanh(np.concatenate([h[v], m]) @ wu + bu))
    np.testing.assert_allclose(out, np.array(expected), rtol=1e-5, atol=1e-5)


def test_round_trip_and_errors(tmp_path):
    a, h = random_graph()
    features, adjacency = keras.Input((5,)), keras.Input((None,), sparse=True)
    out = GCNConv(2)(MessagePassing(4, aggregation="mean")(features, adjacency), adjacency)
    model = keras.Model([features, adjacency], out)
    x = [tf.constant(h), tf.sparse.from_dense(a)]
    model.save(tmp_path / "g.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "g.keras")(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="aggregation"):
        MessagePassing(3, aggregation="max")
    with pytest.raises(ValueError, match="units"):
        GCNConv(0)
