"""`--training auto` for a transfer-learning classifier: the notes' strategy by target data size (F3:8039-8045).

| training images | the notes' strategy                   | what auto runs                                                |
|-----------------|---------------------------------------|---------------------------------------------------------------|
| < 1K            | feature extraction only               | `head`: backbone frozen, only the new head trains             |
| 1K - 10K        | fine-tune top layers, freeze early    | `fine-tune`: head, then the top `fine_tune_layers` (20)       |
| 10K - 100K      | fine-tune all with a small LR         | `fine-tune` with every backbone layer (-1) at the small rate  |
| > 100K          | fine-tune all, possibly from scratch  | `scratch`: every layer trains from the start at the full rate |

Only a backbone with pretrained weights (`--weights`, or a `.keras` backbone file) has something to transfer;
any other (the built-in backbones, a keras.applications name without weights) trains from scratch whatever the
size. Pure functions, no TensorFlow (their reasons are printed and kept in the run directory).

Examples:
>>> auto_training(999, pretrained=True)[:2]
('head', None)
>>> auto_training(1_000, pretrained=True)[:2]
('fine-tune', None)
>>> auto_training(10_000, pretrained=True)[:2]
('fine-tune', -1)
>>> auto_training(100_000, pretrained=True)[:2]
('fine-tune', -1)
>>> auto_training(100_001, pretrained=True)[:2]
('scratch', None)
>>> auto_training(50, pretrained=False)[0]
'scratch'
"""

from __future__ import annotations

# (training images below which the band applies, mode, fine_tune_layers override, the notes' words)
BANDS = (
    (1_000, "head", None, "< 1K images: feature extraction only (frozen backbone, new head)"),
    (10_000, "fine-tune", None, "1K-10K images: fine-tune the top layers, keep the early ones frozen"),
    (100_001, "fine-tune", -1, "10K-100K images: fine-tune all layers with a small learning rate"),
    (None, "scratch", None, "> 100K images: fine-tune all layers from the start (possibly from scratch)"),
)


def is_pretrained(backbone: str, weights: str) -> bool:
    """Whether the backbone starts from learned weights (so freezing some of it keeps something)."""
    return bool(weights) or str(backbone).endswith(".keras")


def auto_training(num_train: int, pretrained: bool) -> tuple:
    """`(mode, fine_tune_layers or None, reason)` for `num_train` training images (see the table above)."""
    if not pretrained:
        return "scratch", None, "the backbone has no pretrained weights (no --weights): nothing to transfer, so " \
                                "every layer trains from scratch"
    for below, mode, layers, words in BANDS:
        if below is None or num_train < below:
            detail = {"head": "head", "scratch": "scratch"}.get(mode, "fine-tune, all backbone layers" if layers
                                                                 else "fine-tune, top layers")
            return mode, layers, f"{num_train:,} training images -> {detail} (the notes' table: {words})"
    raise AssertionError("unreachable")
