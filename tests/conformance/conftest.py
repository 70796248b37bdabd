"""Fixtures of the conformance matrix: tiny real datasets (not ours) written once per worker, a serve base.

The matrix itself (tests/conformance/test_<app>.py) trains each app x model family once through the CLI and
runs every other verb in a new process; the helpers live in `tests/conformance/cells.py`.
"""

from __future__ import annotations

import os
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.conformance import cells  # noqa: E402


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("conformance_data")


@pytest.fixture(scope="session")
def image_folder(data_root):
    """Real digits (scikit-learn) as class folders of RGB PNG + JPEG, 16/20/28 px."""
    return cells.image_folder(str(data_root / "images"))


@pytest.fixture(scope="session")
def image_inputs(image_folder):
    return cells.image_files(image_folder)


@pytest.fixture(scope="session")
def review_rows():
    return cells.polarity_rows(40)


@pytest.fixture(scope="session")
def reviews_csv(data_root, review_rows):
    """40 real movie-review sentences (Pang & Lee polarity), columns review,sentiment."""
    return cells.text_csv(str(data_root / "reviews.csv"), review_rows)


@pytest.fixture(scope="session")
def bert_checkpoint(data_root, review_rows):
    """A tiny random BERT as a local keras-hub preset folder (vocabulary from the reviews), offline."""
    return cells.bert_preset(str(data_root), [text for text, _ in review_rows])


@pytest.fixture(scope="module")
def serve_base(tmp_path_factory):
    """Every export of one test file goes under here (<base>/<name>/<version>/): one server serves them all."""
    return str(tmp_path_factory.mktemp("savedmodels"))
