"""Text models: vectorisers, word2vec, sequence classifiers, seq2seq with attention."""
