"""The array-classifier task's options and CLI facts, importable without TensorFlow (`toolkit array-classifier
--help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

DATA_HELP = ("a .npz file with arrays x (samples stacked: [N, T, C] or [N, T] sequences, or [N, D, H, W, C] "
             "volumes), y ([N] integer class ids, or class-name strings) and optional class_names ([K] names in id "
             "order); or a folder of class sub-folders of .npy files, one sample per file (signals/walk/001.npy: "
             "class walk). The rank of one sample picks the model: (T, C) or (T,) (one channel) a Conv1D "
             "classifier, (D, H, W, C) a Conv3D one. Every sample must have the same shape and finite values; a "
             "bad file, key or value is an error naming it")
MODELS = ("auto", "conv1d", "conv3d")


@dataclasses.dataclass
class Config(BaseConfig):
    """Array-classifier options (every field is also a `--flag` of `toolkit array-classifier train`)."""

    model: str = option("auto", "auto: by the rank of one sample, (T, C) conv1d (Conv1D blocks), (D, H, W, C) conv3d "
                        "(Conv3D blocks); conv1d / conv3d: insist on that rank (the export table has a row each)",
                        choices=MODELS)
    batch_size: int = option(32, "samples per batch")
    filters: str = option("", "comma list of conv widths, one Conv/BN/ReLU block each (max pooling between "
                          "blocks); empty: 32,64,64 for sequences, 16,32 for volumes")
    kernel_size: int = option(0, "conv kernel size (per axis); 0: 5 for sequences, 3 for volumes")
    dropout: float = option(0.2, "dropout before the softmax layer")
    standardize: bool = option(True, "a first frozen layer with each channel's mean and variance on the "
                               "training samples (inside the model: the export takes raw values)")


class ArrayClassifierSpec(TaskSpec):
    name = "array-classifier"
    description = ("Classification of numeric arrays: sequences (audio-like 1D signals, multichannel sensor data) "
                   "with a Conv1D network, volumes (CT-like stacks, short videos) with a Conv3D network; held-out "
                   "accuracy, per-class report and confusion matrix; an export that takes float arrays and "
                   "returns class probabilities and label names. --data / --test-data: " + DATA_HELP + ". predict "
                   "inputs: .npy files (one sample each) or .npz files (every sample of x).")
    config_cls = Config
    model_names = MODELS[1:]  # export-table rows; a run's `auto` resolves to one of them from its data


SPEC = ArrayClassifierSpec()
