"""The 1D / 3D array reader: .npz files and class folders of .npy files, rank dispatch, errors that name the file,
key or value."""

import numpy as np
import pytest

from toolkit.data import DataError
from toolkit.data.arrays import (
    as_sample, bright_cubes, model_of, read_arrays, read_input_arrays, sine_waves, split,
)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_with_names_and_rank_dispatch(tmp_path):
    x, y, names = sine_waves(4, length=16)
    data = read_arrays(_npz(tmp_path / "s.npz", x=x, y=y, class_names=np.array(names)))
    assert data.x.dtype == np.float32 and data.sample_shape == (16, 2) and data.class_names == names
    assert model_of(data.sample_shape) == "conv1d" and data.where[3].endswith("s.npz[x][3]")
    one_channel = read_arrays(_npz(tmp_path / "t.npz", x=x[..., 0], y=y))  # (N, T): one channel
    assert one_channel.sample_shape == (16, 1) and one_channel.class_names == ["0", "1"]
    v, vy, _ = bright_cubes(2, side=6)
    assert model_of(read_arrays((v, vy)).sample_shape) == "conv3d"
    named = read_arrays(_npz(tmp_path / "n.npz", x=x, y=np.array(["walk", "run"] * 4)))  # string labels
    assert named.class_names == ["run", "walk"] and named.y.tolist() == [1, 0] * 4
    assert as_sample(np.zeros(5), "a").shape == (5, 1)


def test_npz_errors_name_the_file_and_key(tmp_path):
    x, y, _ = sine_waves(3, length=8)
    with pytest.raises(DataError, match=r"no array 'x' \(found keys \['data', 'y'\]\)"):
        read_arrays(_npz(tmp_path / "a.npz", data=x, y=y))
    with pytest.raises(DataError, match=r"b.npz' has no array 'y'"):
        read_arrays(_npz(tmp_path / "b.npz", x=x))
    bad = x.copy()
    bad[4, 3, 1] = np.nan
    with pytest.raises(DataError, match=r"c.npz\[x\]\[4\]: value nan at index \(3, 1\)"):
        read_arrays(_npz(tmp_path / "c.npz", x=bad, y=y))
    with pytest.raises(DataError, match=r"d.npz\[x\]: expected samples stacked .* shape \(6, 8, 2, 1\).*channel axis"):
        read_arrays(_npz(tmp_path / "d.npz", x=x[..., None], y=y))
    with pytest.raises(DataError, match=r"only one class \('1'\)"):
        read_arrays(_npz(tmp_path / "e.npz", x=x, y=np.ones(6, int)))
    with pytest.raises(DataError, match=r"f.npz\[y\]: 5 labels for 6 samples"):
        read_arrays(_npz(tmp_path / "f.npz", x=x, y=y[:5]))
    with pytest.raises(DataError, match=r"g.npz\[y\]: label 2 \(at index 5\) is outside .*g.npz\[class_names\]"):
        read_arrays(_npz(tmp_path / "g.npz", x=x, y=np.array([0, 1, 0, 1, 0, 2]), class_names=np.array(["a", "b"])))
    with pytest.raises(DataError, match=r"h.npz\[y\]: labels must be integer class ids or class names. Received: 0.5"):
        read_arrays(_npz(tmp_path / "h.npz", x=x, y=np.array([0, 1, 0, 1, 0, 0.5])))


def test_npy_class_folders(tmp_path):
    x, y, names = sine_waves(3, length=12)
    for i, (sample, label) in enumerate(zip(x, y)):
        (tmp_path / names[label]).mkdir(exist_ok=True)
        np.save(tmp_path / names[label] / f"{i}.npy", sample[:, 0])  # (T,) samples: one channel
    data = read_arrays(str(tmp_path))
    assert data.class_names == ["2hz", "5hz"] and data.sample_shape == (12, 1) and data.y.tolist() == [0] * 3 + [1] * 3
    np.save(tmp_path / "5hz" / "odd.npy", np.zeros((10, 1)))
    with pytest.raises(DataError, match=r"odd.npy: shape \(10, 1\) differs from .*2hz/0.npy's \(12, 1\)"):
        read_arrays(str(tmp_path))
    np.save(tmp_path / "5hz" / "odd.npy", np.zeros((4, 4, 4)))
    with pytest.raises(DataError, match=r"odd.npy: one sample must be .* shape \(4, 4, 4\).*\(D, H, W, 1\)"):
        read_arrays(str(tmp_path))
    (tmp_path / "5hz" / "odd.npy").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty'\] have no .npy files"):
        read_arrays(str(tmp_path))


def test_evaluation_data_maps_onto_the_training_classes(tmp_path):
    x, y, _ = sine_waves(2, length=8)
    data = read_arrays((x, y, ["b", "c"]), class_names=["a", "b", "c"], sample_shape=(8, 2))
    assert data.y.tolist() == [1, 1, 2, 2] and data.class_names == ["a", "b", "c"]
    assert read_arrays((x, y), class_names=["a", "b"]).y.tolist() == y.tolist()  # unnamed ids: kept
    with pytest.raises(DataError, match=r"class 'z' of the data is not one of the model's classes \['a', 'b'\]"):
        read_arrays((x, y, ["a", "z"]), class_names=["a", "b"])
    with pytest.raises(DataError, match=r"samples have shape \(8, 2\), the model takes \(16, 2\)"):
        read_arrays((x, y), class_names=["a", "b"], sample_shape=(16, 2))


def test_predict_inputs_and_split(tmp_path):
    x, y, _ = sine_waves(2, length=8)
    np.save(tmp_path / "one.npy", x[0])
    pairs = read_input_arrays(str(tmp_path / "one.npy")) + read_input_arrays(_npz(tmp_path / "m.npz", x=x))
    assert [p[0].split("/")[-1] for p in pairs] == ["one.npy"] + [f"m.npz[x][{i}]" for i in range(4)]
    with pytest.raises(DataError, match=r"notes.txt: predict takes .npy files"):
        read_input_arrays(str(tmp_path / "notes.txt"))
    train, val = split(read_arrays((x, y)), 0.25, seed=0)
    assert len(train) == 3 and len(val) == 1 and sorted([*train, *val]) == [0, 1, 2, 3]


def test_missing_unreadable_and_non_archive_files_are_named(tmp_path):
    with pytest.raises(DataError, match=r"absent\.npz: no such file"):
        read_arrays(str(tmp_path / "absent.npz"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\xe9 not numpy")  # a Latin-1 byte, not an archive
    with pytest.raises(DataError, match=r"junk\.npz: not a readable \.npz file"):
        read_arrays(str(junk))
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros((4, 8, 1), "float32"))  # a .npy payload under a .npz name
    with pytest.raises(DataError, match=r"single\.npz: a \.npy array, not a \.npz archive"):
        read_arrays(str(single))
    with pytest.raises(DataError, match=r"gone\.npy: no such file"):
        read_input_arrays(str(tmp_path / "gone.npy"))
