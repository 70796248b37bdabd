"""Node classification: on a stochastic-block-model graph with noisy features the GCN beats the features-only MLP."""

import numpy as np
import pytest

from toolkit.models.graph import build_node_classifier, stochastic_block_model, train_node_classifier


def test_gcn_beats_features_only_mlp():
    graph = stochastic_block_model([40] * 3, p_in=0.15, p_out=0.01, feature_dim=8, feature_noise=1.5,
                                   labels_per_class=5, val_per_class=10, seed=0)
    results = {}
    for kind in ("gcn", "mlp"):
        model = build_node_classifier(8, graph.num_classes, kind=kind, hidden=16)
        results[kind] = train_node_classifier(model, graph, epochs=80, patience=30, seed=0)
    assert results["gcn"]["test_accuracy"] >= 0.85
    assert results["gcn"]["test_accuracy"] > results["mlp"]["test_accuracy"] + 0.2


def test_sbm_masks_and_errors():
    g = stochastic_block_model([30, 30], p_in=0.2, p_out=0.0, labels_per_class=3, val_per_class=5, seed=1)
    assert np.array_equal(g.adjacency, g.adjacency.T) and not np.any(np.diag(g.adjacency))
    assert not np.any(g.adjacency[:30, 30:])  # p_out = 0: no edge across blocks
    assert (g.train_mask & g.test_mask).sum() == 0 and g.train_mask.sum() == 6 and g.val_mask.sum() == 10
    with pytest.raises(ValueError, match="kind"):
        build_node_classifier(4, 2, kind="gat")
    with pytest.raises(ValueError, match="every block"):
        stochastic_block_model([5, 5], 0.5, 0.1, labels_per_class=5)
