"""Text models: vectorisers, word2vec, sequence classifiers, seq2seq with attention.

The family's registered custom objects are exported here: `TfIdf`, `BM25Tokenizer`, `BM25Scores` (layers) and
`Word2Vec` (model). Builders
live in the modules (`vectorize`, `word2vec`, `classifiers`, `seq2seq`, `transformer`, which needs keras_hub).
"""

from toolkit.models.text.bm25 import BM25Index, BM25Scores, BM25Tokenizer
from toolkit.models.text.generator import TextGenerator
from toolkit.models.text.vectorize import TfIdf
from toolkit.models.text.word2vec import Word2Vec

__all__ = ["BM25Index", "BM25Scores", "BM25Tokenizer", "TextGenerator", "TfIdf", "Word2Vec"]
