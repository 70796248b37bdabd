"""Text readers: CSV with named columns, class folders, lists, dicts, TFDS; named errors; offline corpora."""

import numpy as np
import pytest

from toolkit.data import text_samples
from toolkit.data.images import DataError
from toolkit.data.text import encode_labels, load_text_dataset, read_text_file


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_with_user_named_columns(tmp_path):
    path = _csv(tmp_path, 'review,stars\n"great, really",good\nawful,bad\nfine film,good\n')
    ds = load_text_dataset(path, text_column="review", label_column="stars")
    assert ds.class_names == ["bad", "good"]
    pairs = sorted(zip(ds.train_texts.tolist(), ds.train_labels.tolist()))
    assert pairs == [("awful", 0), ("fine film", 1), ("great, really", 1)]


def test_tsv_and_validation_split_is_shuffled(tmp_path):
    rows = "".join(f"text {i}\t{'a' if i < 10 else 'b'}\n" for i in range(20))
    ds = load_text_dataset(_csv(tmp_path, "text\tlabel\n" + rows, "d.tsv"), validation_split=0.25, seed=1)
    assert ds.num_train == 15 and len(ds.validation_texts) == 5
    assert set(ds.validation_labels.tolist()) == {0, 1}  # label-sorted file, shuffled before splitting
    texts, labels = next(iter(ds.validation))
    assert texts.dtype.name == "string" and labels.shape == (5,)


def test_missing_column_names_file_and_columns(tmp_path):
    path = _csv(tmp_path, "text,label\nhello,a\n")
    with pytest.raises(DataError, match=r"data.csv: no column 'sentence' \(columns: \['text', 'label'\]\)"):
        load_text_dataset(path, text_column="sentence")


def test_empty_text_names_row(tmp_path):
    path = _csv(tmp_path, "text,label\nhello,a\n   ,b\n")
    with pytest.raises(DataError, match=r"data.csv row 3 column 'text': empty text"):
        load_text_dataset(path)


def test_label_outside_class_list(tmp_path):
    path = _csv(tmp_path, "text,label\nhello,pos\nbye,neutral\n")
    with pytest.raises(DataError, match=r"row 3 .*label 'neutral' is not in the class list \['neg', 'pos'\]"):
        load_text_dataset(path, class_names=["neg", "pos"])
    with pytest.raises(DataError, match="label 5 is not in the class list"):
        encode_labels([0, 5], ["a", "b"])


def _latin1_tickets(tmp_path):
    """A cp1252 CSV: a quoted field spanning lines 3-4, then the first non-ASCII byte (é = 0xe9) on line 5."""
    path = tmp_path / "tickets.csv"
    path.write_bytes(b'text,label\nprinter jammed,hw\n"screen flickers,\nthen goes black",hw\n'
                     b"caf\xe9 machine broken,facility\nlogin fails,sw\n")
    return str(path)


def test_non_utf8_csv_names_file_line_byte_and_encoding_fix(tmp_path):
    path = _latin1_tickets(tmp_path)
    with pytest.raises(DataError) as error:
        load_text_dataset(path)
    assert str(error.value) == (
        f"{path} is not valid utf-8 (byte 0xe9 at line 5); pass the file's encoding "
        '(--encoding cp1252 on the command line, encoding="cp1252" in Python)')
    with pytest.raises(DataError, match="unknown text encoding 'klingon'"):
        load_text_dataset(path, encoding="klingon")


def test_cp1252_csv_with_quoted_multiline_field(tmp_path):
    ds = load_text_dataset(_latin1_tickets(tmp_path), encoding="cp1252")
    assert sorted(ds.train_texts.tolist()) == [
        "café machine broken", "login fails", "printer jammed", "screen flickers,\nthen goes black"]
    assert ds.class_names == ["facility", "hw", "sw"]
    crlf = tmp_path / "crlf.csv"  # Windows line endings and a UTF-8 byte-order mark (Excel's "CSV UTF-8")
    crlf.write_bytes(b'\xef\xbb\xbftext,label\r\n"two\r\nlines",a\r\none,b\r\n')
    ds = load_text_dataset(str(crlf))
    assert sorted(ds.train_texts.tolist()) == ["one", "two\r\nlines"]


def test_non_utf8_text_file_in_folder_and_read_text_file(tmp_path):
    for label in ("neg", "pos"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "0.txt").write_text("fine")
    (tmp_path / "pos" / "1.txt").write_bytes(b"line one\nline two\nna\xefve\n")
    with pytest.raises(DataError, match=r"pos/1.txt is not valid utf-8 \(byte 0xef at line 3\); .*--encoding cp1252"):
        load_text_dataset(str(tmp_path))
    assert load_text_dataset(str(tmp_path), encoding="latin-1").num_train == 3
    assert read_text_file(tmp_path / "pos" / "1.txt", "cp1252") == "line one\nline two\nna\u00efve\n"


def test_folder_tree(tmp_path):
    for label, texts in {"pos": ["good", "nice"], "neg": ["bad"]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text)
    ds = load_text_dataset(str(tmp_path))
    assert ds.class_names == ["neg", "pos"]
    assert sorted(zip(ds.train_texts.tolist(), ds.train_labels.tolist())) == [("bad", 0), ("good", 1), ("nice", 1)]
    (tmp_path / "neg" / "2.txt").write_text("\n")
    with pytest.raises(DataError, match=r"neg/2.txt: empty text"):
        load_text_dataset(str(tmp_path))


def test_lists_dicts_and_errors():
    ds = load_text_dataset((["a b", "c d", "e"], [1, 0, 1]), class_names=["neg", "pos"])
    assert ds.class_names == ["neg", "pos"] and sorted(ds.train_labels.tolist()) == [0, 1, 1]
    ds = load_text_dataset({"sentence": ["x", "y"], "label": ["u", "v"]}, text_column="sentence")
    assert ds.num_classes == 2
    with pytest.raises(DataError, match="2 texts but 1 labels"):
        load_text_dataset((["x", "y"], ["u"]))
    with pytest.raises(DataError, match="at least 2 classes"):
        load_text_dataset((["x", "y"], ["u", "u"]))
    with pytest.raises(DataError, match="does not exist"):
        load_text_dataset("/no/such/file.csv")


def test_polarity_corpus_is_cp1252_and_label_sorted():
    texts, labels = text_samples.polarity()
    assert len(texts) == 200 and labels[:100] == ["neg"] * 100 and labels[100:] == ["pos"] * 100
    assert any(not t.isascii() for t in texts)  # decoded from cp1252 without errors


def test_newsgroups_headers_stripped():
    texts, labels = text_samples.mini_newsgroups()
    assert len(texts) == 200 and sorted(set(labels)) == ["alt.atheism", "sci.space"]
    assert not any(t.startswith("Newsgroups:") or "\nNewsgroups: " in t[:300] for t in texts)


def test_django_parallel_pairs():
    pairs = text_samples.django_parallel("fr")
    assert len(pairs) > 300
    assert ("February", "février") in pairs
    assert all("%" not in s + t for s, t in pairs)


def test_debian_corpora_when_installed():
    try:
        glosses = text_samples.wordnet_glosses(limit=50)
        fortunes = text_samples.fortunes(limit=20)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    assert len(glosses) == 50 and all(g.strip() for g in glosses)
    assert len(fortunes) == 20
    assert text_samples.tokenize("It's A test, 2 words.") == ["it's", "a", "test", "2", "words"]


@pytest.mark.slow
def test_tfds_name_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        ds = load_text_dataset("tfds:imdb_reviews")
    assert ds.class_names == ["neg", "pos"] and ds.num_train == 8
    assert isinstance(ds.train_texts[0], str) and np.issubdtype(ds.train_labels.dtype, np.integer)
