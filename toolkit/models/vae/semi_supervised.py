"""Semi-supervised evaluation: a small classifier on latent codes trained with only N labels per class.

The lecture notes' recipe (SEED_CATALOGUE section 8): learn z from all (unlabelled) images, then train a
classifier on z with few labels. The same classifier on raw pixels with the same labelled images is the
baseline. The classifier is scikit-learn's multinomial logistic regression on standardised features.
"""

from __future__ import annotations

import numpy as np


def pick_per_class(labels, n_per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of `n_per_class` random examples of every class present in `labels`.

    Raises:
        ValueError: when a class has fewer than `n_per_class` examples.

    Examples:
    >>> idx = pick_per_class(np.array([0, 0, 1, 1, 1]), 2)
    >>> sorted(np.array([0, 0, 1, 1, 1])[idx].tolist())
    [0, 0, 1, 1]
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picked = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < n_per_class:
            raise ValueError(f"class {cls} has {len(members)} examples, fewer than n_per_class={n_per_class}")
        picked.append(rng.choice(members, n_per_class, replace=False))
    return np.concatenate(picked)


def few_label_accuracy(train_features, train_labels, test_features, test_labels, n_per_class: int,
                       repeats: int = 3, seed: int = 0) -> dict:
    """Test accuracy of logistic regression trained on `n_per_class` labelled examples per class.

    Args:
        train_features: `[N, D]` features of the pool the labelled examples are drawn from.
        train_labels: `[N]` int labels of that pool.
        test_features, test_labels: held-out features and labels.
        n_per_class: labels per class.
        repeats: independent draws of the labelled subset (the mean and std are reported).
        seed: seed of the first draw.

    Returns:
        `{"mean": float, "std": float, "runs": [float, ...]}`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features = np.asarray(train_features, "float32").reshape(len(train_features), -1)
    test_features = np.asarray(test_features, "float32").reshape(len(test_features), -1)
    runs = []
    for r in range(repeats):
        idx = pick_per_class(train_labels, n_per_class, seed + r)
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        classifier.fit(train_features[idx], np.asarray(train_labels)[idx])
        runs.append(float(np.mean(classifier.predict(test_features) == np.asarray(test_labels))))
    return {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}
