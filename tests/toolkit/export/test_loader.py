"""Loading an export never executes code named by the model folder; only allow-listed op libraries load."""

import json
import os

import keras
import numpy as np

from toolkit.export import export, load
from toolkit.export.exporter import METADATA_FILE


def test_requires_entry_outside_the_allow_list_is_never_imported(tmp_path, monkeypatch, caplog):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = export(model, str(tmp_path / "tiny"))
    metadata_file = os.path.join(path, METADATA_FILE)
    with open(metadata_file) as f:
        metadata = json.load(f)
    metadata["requires"] = ["toolkit_payload_probe"]
    with open(metadata_file, "w") as f:
        json.dump(metadata, f)
    marker = tmp_path / "ran.txt"
    # the payload sits where an import would find it: beside the model, on sys.path
    (tmp_path / "tiny" / "toolkit_payload_probe.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "tiny"))
    predictor = load(path)
    assert not marker.exists()
    assert "toolkit_payload_probe" in caplog.text and "not an allowed op library" in caplog.text
    out = predictor(np.ones((2, 3), "float32"), signature="serving_dense")
    assert next(iter(out.values())).shape == (2, 2)
