"""Many tasks on one BERT base: a `--fine-tuning lora` run keeps its task as `adapter.npz` (the notes' A and B of
every attention projection, the output layer and the class names: ~150k numbers for MiniLM at r = 8), and
`export --lora-adapter FILE` exports a run's base with another task's adapter merged in instead of its own.

    toolkit text-classifier train --data reviews.csv --model bert --fine-tuning lora     # runs/.../adapter.npz
    toolkit text-classifier train --data tickets.csv --model bert --fine-tuning lora
    toolkit text-classifier export RUN_REVIEWS --output savedmodels/support                # version 1: reviews
    toolkit text-classifier export RUN_REVIEWS --output savedmodels/support --lora-adapter RUN_TICKETS/adapter.npz

The second export is version 2 of the same model: `toolkit serve` polls the folder and swaps to it without a
restart (TF Serving's version policy), and the graph is a plain merged BERT (no adapter latency). An adapter only
means something on the weights it was trained against, so each file records its base's fingerprint (the SHA-1
of the token-embedding table, which full fine-tuning and masked-LM adaptation change and LoRA never does) and a
mismatched one is refused.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

ADAPTER_FILE = "adapter.npz"


def base_fingerprint(classifier) -> str:
    """SHA-1 of the BERT backbone's token-embedding table (what identifies the base a LoRA adapter sits on)."""
    from toolkit.models.bert import find_backbone

    table = find_backbone(classifier).token_embedding.get_weights()[0]
    return hashlib.sha1(np.ascontiguousarray(table, dtype="float32").tobytes()).hexdigest()


def save_run_adapter(classifier, ctx) -> str:
    """Writes the live adapters, the `logits` head and the class names to `<run_dir>/adapter.npz` (before the
    merge); `App.finish` adds the held-out metrics (`record_metrics`)."""
    from toolkit.layers.lora import save_adapters

    path = os.path.join(ctx.run_dir, ADAPTER_FILE)
    metadata = {"class_names": list(ctx.data.class_names), "base": base_fingerprint(classifier),
                "checkpoint": ctx.config.checkpoint or "default", "rank": ctx.config.lora_rank}
    written = save_adapters(classifier, path + ".tmp.npz", head=classifier.get_layer("logits"), metadata=metadata)
    os.replace(written, path)  # atomic: a kill never leaves half a file under the real name
    ctx.state["lora_adapter"] = path
    return path


def record_metrics(run, ctx) -> None:
    """After held-out scoring: the run's metrics into its adapter file's metadata (an export that swaps this
    task in reports them)."""
    path = ctx.state.get("lora_adapter")
    if not path or not os.path.isfile(path):
        return
    with np.load(path) as saved:
        arrays = {key: saved[key] for key in saved.files}
    from toolkit.layers.lora import META, adapter_metadata

    metrics = {k: float(v) for k, v in run.metrics.items() if isinstance(v, (int, float, np.floating))}
    arrays[META] = np.array(json.dumps({**adapter_metadata(path), "metrics": metrics}))
    np.savez(path + ".tmp.npz", **arrays)
    os.replace(path + ".tmp.npz", path)


def swap_run_adapter(run, path: str) -> list:
    """Puts the task in adapter file `path` on `run`'s base in place of the run's own (or last swapped-in) one:
    kernels, `logits` head, class names, and the metrics the export's metadata reports. Returns the class names.

    Raises:
        ValueError: the run has no adapter file (not a `--fine-tuning lora` bert run), the file is missing, or it
            was trained on another base (fingerprints differ).
    """
    from toolkit.layers.lora import adapter_metadata, swap_merged_adapter

    path = os.fspath(path)
    own = os.path.join(run.run_dir or "", ADAPTER_FILE)
    if not run.run_dir or not os.path.isfile(own):
        raise ValueError(f"run {run.run_dir!r} has no {ADAPTER_FILE}: --lora-adapter needs a run trained with "
                         "--model bert --fine-tuning lora")
    if not os.path.isfile(path):
        raise ValueError(f"--lora-adapter {path!r}: no such file (a lora run directory's {ADAPTER_FILE})")
    current = getattr(run, "_lora_current", own)
    mine, theirs = adapter_metadata(current), adapter_metadata(path)
    if mine.get("base") != theirs.get("base"):
        raise ValueError(f"--lora-adapter {path!r} was trained on another base (checkpoint "
                         f"{theirs.get('checkpoint')!r}, token embeddings {str(theirs.get('base'))[:12]}) than run "
                         f"{run.run_dir!r} (checkpoint {mine.get('checkpoint')!r}, {str(mine.get('base'))[:12]}): an "
                         "adapter only means something on the weights it was trained against")
    classifier = run.model.get_layer("classifier")
    swap_merged_adapter(classifier, current, path, head=classifier.get_layer("logits"))
    classifier._toolkit_infer = None  # traced with the previous kernels
    run._lora_current = path
    run.info = {**run.info, "class_names": list(theirs["class_names"]), "lora_adapter": os.path.abspath(path)}
    run.metrics = dict(theirs.get("metrics", {}))
    run.__dict__.pop("_adapter", None)
    return run.info["class_names"]
