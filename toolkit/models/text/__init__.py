"""Text models: vectorisers, word2vec, sequence classifiers, seq2seq with attention.

The family's registered custom objects are exported here: `TfIdf`, `BM25Tokenizer`, `BM25Scores`,
`EndOfWordBytePairTokenizer` (layers) and `Word2Vec`, `GloVe`, `TextGenerator` (models). Builders
live in the modules (`vectorize`, `word2vec`, `classifiers`, `seq2seq`, `transformer`, which needs keras_hub).
"""

from toolkit.models.text.bm25 import BM25Index, BM25Scores, BM25Tokenizer
from toolkit.models.text.bpe import EndOfWordBytePairTokenizer  # built on first use: registers the keras-hub class
from toolkit.models.text.generator import TextGenerator
from toolkit.models.text.glove import GloVe
from toolkit.models.text.vectorize import TfIdf
from toolkit.models.text.word2vec import Word2Vec

__all__ = ["BM25Index", "BM25Scores", "BM25Tokenizer", "EndOfWordBytePairTokenizer", "GloVe", "TextGenerator", "TfIdf",
           "Word2Vec"]
