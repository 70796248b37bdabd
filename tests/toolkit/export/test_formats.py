"""The export-format table: unknown names and unsupported (target, format) pairs fail before any work."""

import os

import pytest

from toolkit.export.formats import UNSUPPORTED, check_export_options, parse_formats, support_table


def test_parse_and_check():
    assert parse_formats("saved_model, tflite,") == ("saved_model", "tflite")
    assert parse_formats("") == ("saved_model",)
    assert check_export_options("text-classifier/lstm", "tpu", ["tflite"]) == ("tflite",)
    with pytest.raises(ValueError, match=r"unknown export format\(s\) \['tf-lite'\]; choose from saved_model, tflite, onnx"):
        parse_formats("saved_model,tf-lite")
    with pytest.raises(ValueError, match="unknown export target 'npu'; choose from cpu, gpu, tpu"):
        check_export_options("vae", "npu", "saved_model")
    with pytest.raises(ValueError, match="text-classifier/gru cannot export tflite for target cpu: the TFLite"):
        check_export_options("text-classifier/gru", "cpu", "saved_model,tflite")
    assert check_export_options("text-classifier/gru", "tpu", "tflite") == ("tflite",)  # static batch: fine
    with pytest.raises(ValueError, match="text-classifier/transformer cannot export onnx for target tpu"):
        check_export_options("text-classifier/transformer", "tpu", ("onnx",))
    assert check_export_options("image-classifier", "tpu", "tflite,onnx") == ("tflite", "onnx")


def test_support_table_marks_each_refused_pair():
    table = support_table(["vae", "text-classifier/gru", "text-classifier/transformer"]).splitlines()
    header = table[0].split()
    assert header[0] == "model" and "tpu:tflite" in header and "cpu:saved_model" not in header
    rows = {line.split()[0]: dict(zip(header[1:], line.split()[1:])) for line in table[1:]}
    for (kind, target, fmt) in UNSUPPORTED:
        if kind in rows:
            assert rows[kind][f"{target}:{fmt}"] == "no"
    assert rows["vae"]["tpu:tflite"] == "yes" and rows["text-classifier/gru"]["cpu:onnx"] == "yes"
    assert rows["text-classifier/gru"]["tpu:tflite"] == "yes" and rows["text-classifier/transformer"]["cpu:tflite"] == "yes"


def test_cli_refuses_a_pair_before_training(tmp_path, capsys):
    from apps import cli

    code = cli.main(["text-classifier", "train", "--data", str(tmp_path / "absent.csv"), "--model", "gru",
                     "--export", str(tmp_path / "out"), "--formats", "tflite", "--run-dir", str(tmp_path / "runs")])
    assert code == 2
    err = capsys.readouterr().err
    assert "text-classifier/gru cannot export tflite for target cpu" in err
    assert not os.path.exists(tmp_path / "runs") and not os.path.exists(tmp_path / "out")
    code = cli.main(["image-classifier", "train", "--data", str(tmp_path), "--backbone", "ResNet999",
                     "--run-dir", str(tmp_path / "runs")])
    assert code == 2 and "unknown backbone 'ResNet999'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "runs")


def test_every_advertised_quantized_pair_has_an_accuracy_guard():
    # A (kind, cpu, quantized format) the table does not refuse must have a guard metric in apps/quantization.py,
    # else `--formats tflite-int8` passes the up-front check and fails after training.
    from apps.cli import TASKS, task_spec
    from apps.quantization import GUARDS
    from toolkit.export.formats import QUANTIZED_FORMATS, unsupported_reason

    advertised = {(kind, fmt) for name in TASKS for kind in task_spec(name).kinds() for fmt in QUANTIZED_FORMATS
                  if unsupported_reason(kind, "cpu", fmt) is None}
    assert advertised, "no task advertises a quantized format"
    missing = sorted((kind, fmt) for kind, fmt in advertised if kind.split("/")[0] not in GUARDS)
    assert not missing, f"quantized formats advertised without an accuracy guard: {missing}"
    with pytest.raises(ValueError, match="question-answerer cannot export tflite-int8 for target cpu: the text apps"):
        check_export_options("question-answerer", "cpu", "saved_model,tflite-int8")
