"""BLEU (Papineni et al.): keras-hub's implementation, wrapped for plain Python lists of sentences.

BLEU = BP * exp(sum_n w_n log p_n), clipped n-gram precisions summed over the corpus before dividing,
BP = exp(min(0, 1 - ref_len / hyp_len)), w_n = 1 / N (SEED_CATALOGUE section 6).
"""

from __future__ import annotations


def corpus_bleu(references, hypotheses, max_order: int = 4, smooth: bool = False) -> float:
    """Corpus BLEU in [0, 1] of `hypotheses` (strings) against `references` (a string or a list of strings each).

    keras-hub tokenises like sacrebleu's 13a tokenizer (punctuation split off).

    Examples:
    >>> round(corpus_bleu(["the cat sat on the mat"], ["the cat on the mat"], max_order=2), 4)  # oracle 5
    0.709
    """
    import keras_hub

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max(len(r) for r in refs)
    refs = [r + [r[-1]] * (width - len(r)) for r in refs]  # ragged lists of references, padded by repetition
    metric = keras_hub.metrics.Bleu(max_order=max_order, smooth=smooth)
    metric.update_state(refs, [str(h) for h in hypotheses])
    return float(metric.result())
