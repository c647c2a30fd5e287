"""Dataset loading (learning/datasets.py): IDX files, MNIST, the embedded digits, subsets, one-hot.

The IDX tests write small files of their own.  The MNIST tests read the full
dataset from ``../shared/data/mnist`` beside the repository and are skipped
when it is absent; the package itself never looks there.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from learning.datasets import (
    Dataset,
    DatasetError,
    load_dataset,
    load_embedded,
    load_mnist,
    one_hot,
    read_idx,
)

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"full MNIST not found at {MNIST_DIR} (only the tests use it)",
)

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of ``arr``."""
    code = _CODES[arr.dtype.type]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray | bytes, compress: bool = False) -> Path:
    data = arr if isinstance(arr, bytes) else idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_mnist(
    folder: Path,
    n_images: int = 5,
    n_labels: int | None = None,
    labels=None,
    *,
    compress: bool = False,
    sep: str = "-",
    prefix: str = "train",
) -> Path:
    """A tiny fake MNIST split (``prefix`` "train" or "t10k") in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n_images, 28, 28), dtype=np.uint8)
    if labels is None:
        labels = np.arange(n_images if n_labels is None else n_labels) % 10
    ext = ".gz" if compress else ""
    write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{ext}", images, compress)
    write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{ext}", np.asarray(labels, dtype=np.uint8), compress)
    return folder


# ---------------------------------------------------------------------------
# IDX round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", list(_CODES), ids=lambda t: t.__name__)
def test_idx_round_trip(tmp_path, compress, dtype):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", arr, compress))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # writable


def test_idx_compression_detected_by_magic_bytes_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain_named.idx", arr, compress=True)), arr)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "gz_named.gz", arr, compress=False)), arr)


def test_idx_one_dimension_and_empty(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", labels)), labels)
    empty = read_idx(write_idx(tmp_path / "e", np.zeros((0, 28, 28), np.uint8)))
    assert empty.shape == (0, 28, 28)


def test_idx_expect_magic(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    assert read_idx(path, expect_magic=0x00000801).shape == (4,)
    with pytest.raises(DatasetError, match=r"found bytes 00 00 08 01 .*expected 00 00 08 03"):
        read_idx(path, expect_magic=0x00000803)


# ---------------------------------------------------------------------------
# IDX errors
# ---------------------------------------------------------------------------


def test_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="not found") as err:
        read_idx(tmp_path / "nope.idx")
    assert str(tmp_path / "nope.idx") in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_bad_magic(tmp_path, compress):
    path = write_idx(tmp_path / "bad", b"PK\x03\x04" + bytes(20), compress)
    with pytest.raises(DatasetError, match=r"bad magic number .*found bytes 50 4b 03 04") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_idx_unknown_type_code(tmp_path):
    with pytest.raises(DatasetError, match=r"found bytes 00 00 0a 01"):
        read_idx(write_idx(tmp_path / "bad", bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 7])))


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_truncated_data(tmp_path, compress):
    data = idx_bytes(np.zeros((10, 28, 28), np.uint8))  # 16 + 7840 bytes
    path = write_idx(tmp_path / "t", data[:-100], compress)
    with pytest.raises(DatasetError, match=r"truncated .*needs 7856 bytes .*found 7756"):
        read_idx(path)


def test_idx_truncated_header(tmp_path):
    with pytest.raises(DatasetError, match=r"truncated .*found 2"):
        read_idx(write_idx(tmp_path / "t", b"\x00\x00"))
    with pytest.raises(DatasetError, match=r"truncated .*needs 16 bytes, found 10"):
        read_idx(write_idx(tmp_path / "t", bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0])))


def test_idx_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32)))
    path = tmp_path / "t.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match=r"truncated|corrupt"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_trailing_bytes(tmp_path, compress):
    data = idx_bytes(np.zeros(5, np.uint8)) + b"junk"
    with pytest.raises(DatasetError, match=r"trailing bytes .*needs 13 bytes, found 17 \(4 too many\)"):
        read_idx(write_idx(tmp_path / "x", data, compress))


# ---------------------------------------------------------------------------
# load_mnist on small fake folders
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("sep", ["-", "."])
def test_load_mnist_spellings(tmp_path, compress, sep):
    folder = write_mnist(tmp_path / "m", n_images=7, compress=compress, sep=sep)
    x, y = load_mnist(folder)
    assert x.shape == (7, 784) and x.dtype == np.float64
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert 0 <= x.min() and x.max() <= 1
    raw = read_idx(next(folder.glob("train-images*")))
    np.testing.assert_array_equal(x, raw.reshape(7, -1) / 255)
    x32, _ = load_mnist(folder, "train", dtype=np.float32)
    assert x32.dtype == np.float32


def test_load_mnist_missing_folder_and_files(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DatasetError, match=r"no MNIST test images .*t10k-images-idx3-ubyte, t10k-images-idx3-ubyte\.gz"
    ):
        load_mnist(tmp_path / "empty", "test")
    folder = write_mnist(tmp_path / "m")
    (folder / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match=r"no MNIST train labels .*train-labels\.idx1-ubyte\.gz"):
        load_mnist(folder)


def test_load_mnist_count_mismatch(tmp_path):
    folder = write_mnist(tmp_path / "m", n_images=5, n_labels=4)
    with pytest.raises(DatasetError, match=r"disagree: 5 images .*4 labels"):
        load_mnist(folder)


def test_load_mnist_labels_out_of_range(tmp_path):
    folder = write_mnist(tmp_path / "m", n_images=3, labels=[1, 12, 3])
    with pytest.raises(DatasetError, match=r"outside 0\.\.9 .*first 12 at index 1"):
        load_mnist(folder)


def test_load_mnist_wrong_image_size(tmp_path):
    folder = write_mnist(tmp_path / "m")
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((5, 27, 28), np.uint8))
    with pytest.raises(DatasetError, match="27×28, expected 28×28"):
        load_mnist(folder)


def test_load_mnist_files_swapped(tmp_path):
    folder = write_mnist(tmp_path / "m")
    write_idx(folder / "train-images-idx3-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match=r"bad magic number .*00 00 08 01 .*expected 00 00 08 03"):
        load_mnist(folder)


def test_load_mnist_bad_arguments(tmp_path):
    folder = write_mnist(tmp_path / "m")
    with pytest.raises(ValueError, match="split"):
        load_mnist(folder, "validation")
    with pytest.raises(ValueError, match="float32 or float64"):
        load_mnist(folder, dtype=np.int32)


# ---------------------------------------------------------------------------
# The real MNIST
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    if not MNIST_DIR.is_dir():
        pytest.skip(f"full MNIST not found at {MNIST_DIR}")
    return load_dataset("mnist", MNIST_DIR)


@needs_mnist
def test_real_mnist_shapes(mnist):
    assert (mnist.n_train, mnist.n_test, mnist.n_features) == (60000, 10000, 784)
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.dtype == np.float64 and mnist.y_train.dtype == np.int64
    assert mnist.x_train.min() == 0 and mnist.x_train.max() == 1
    assert sorted(set(mnist.y_train.tolist())) == list(range(10))
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels
    assert mnist.y_test[:5].tolist() == [7, 2, 1, 0, 4]


@needs_mnist
@pytest.mark.parametrize("name", ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"])
def test_real_mnist_checksum(mnist, name):
    sums = dict(reversed(line.split()) for line in (MNIST_DIR / "SHA256SUMS").read_text().splitlines() if line)
    raw = gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == sums[name]
    labels = mnist.y_train if name.startswith("train") else mnist.y_test
    np.testing.assert_array_equal(np.frombuffer(raw, np.uint8, offset=8), labels)


# ---------------------------------------------------------------------------
# The embedded digits
# ---------------------------------------------------------------------------


def test_embedded():
    data = load_embedded()
    assert data.name == "embedded"
    assert (data.n_train, data.n_test, data.n_features) == (3000, 1000, 784)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert np.bincount(data.y_train).tolist() == [300] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    for x in (data.x_train, data.x_test):
        assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
    for index, n in ((data.train_index, 60000), (data.test_index, 10000)):
        assert np.all(np.diff(index) > 0) and index[0] >= 0 and index[-1] < n
    assert load_embedded(dtype=np.float32).x_train.dtype == np.float32


@needs_mnist
def test_embedded_matches_mnist(mnist):
    data = load_embedded()
    np.testing.assert_array_equal(data.x_train[0], mnist.x_train[data.train_index[0]])
    np.testing.assert_array_equal(data.x_train, mnist.x_train[data.train_index])
    np.testing.assert_array_equal(data.y_train, mnist.y_train[data.train_index])
    np.testing.assert_array_equal(data.x_test, mnist.x_test[data.test_index])
    np.testing.assert_array_equal(data.y_test, mnist.y_test[data.test_index])


# ---------------------------------------------------------------------------
# load_dataset and subsets
# ---------------------------------------------------------------------------


def test_load_dataset_subset_deterministic():
    a = load_dataset("embedded", train_size=200, test_size=50, seed=3)
    b = load_dataset("embedded", train_size=200, test_size=50, seed=3)
    c = load_dataset("embedded", train_size=200, test_size=50, seed=4)
    assert (a.n_train, a.n_test) == (200, 50)
    np.testing.assert_array_equal(a.train_index, b.train_index)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.test_index, b.test_index)
    assert not np.array_equal(a.train_index, c.train_index)
    assert np.bincount(a.y_train).tolist() == [20] * 10
    assert np.bincount(a.y_test).tolist() == [5] * 10


def test_subset_keeps_samples_consistent():
    full = load_embedded()
    sub = full.subset(train_size=37, seed=1)
    assert sub.n_test == full.n_test  # test_size=None keeps the split
    assert np.bincount(sub.y_train).tolist() == [4] * 7 + [3] * 3
    pos = np.searchsorted(full.train_index, sub.train_index)
    np.testing.assert_array_equal(sub.x_train, full.x_train[pos])
    np.testing.assert_array_equal(sub.y_train, full.y_train[pos])


def test_subset_random_and_limits():
    full = load_embedded()
    r1 = full.subset(100, 10, seed=0, balanced=False)
    r2 = full.subset(100, 10, seed=0, balanced=False)
    np.testing.assert_array_equal(r1.train_index, r2.train_index)
    assert r1.n_train == 100 and len(np.unique(r1.train_index)) == 100
    assert full.subset(0, 0).n_train == 0
    with pytest.raises(ValueError, match="train_size"):
        full.subset(train_size=3001)


def test_subset_balanced_when_a_class_runs_out():
    y = np.array([0] * 2 + [1] * 10 + [2] * 10)
    data = Dataset(np.zeros((22, 1)), y, np.zeros((1, 1)), np.zeros(1, int))
    sub = data.subset(train_size=12)
    assert np.bincount(sub.y_train).tolist() == [2, 5, 5]


def test_load_dataset_mnist_from_folder(tmp_path):
    folder = write_mnist(tmp_path / "m", n_images=40, compress=True)
    write_mnist(folder, n_images=20, prefix="t10k", sep=".")
    full = load_dataset("mnist", folder)
    assert full.name == "mnist" and (full.n_train, full.n_test) == (40, 20)
    np.testing.assert_array_equal(full.train_index, np.arange(40))
    sub = load_dataset("mnist", folder, train_size=10, test_size=10, seed=0, dtype=np.float32)
    assert sub.x_train.dtype == np.float32
    assert np.bincount(sub.y_train).tolist() == [1] * 10 and np.bincount(sub.y_test).tolist() == [1] * 10
    np.testing.assert_allclose(sub.x_train, full.x_train[sub.train_index], atol=1e-7)


@needs_mnist
def test_real_mnist_subset(mnist):
    sub = mnist.subset(train_size=1000, test_size=100, seed=0)
    assert sub.name == "mnist"
    assert np.bincount(sub.y_train).tolist() == [100] * 10
    np.testing.assert_array_equal(sub.x_train, mnist.x_train[sub.train_index])
    again = mnist.subset(train_size=1000, test_size=100, seed=0)
    np.testing.assert_array_equal(again.train_index, sub.train_index)
    np.testing.assert_array_equal(again.test_index, sub.test_index)


def test_load_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="needs data_dir"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("mnist", tmp_path / "absent")
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_dataset_validates_shapes():
    with pytest.raises(ValueError, match="train split"):
        Dataset(np.zeros((3, 2)), np.zeros(4), np.zeros((1, 2)), np.zeros(1))
    assert "n_train=3" in repr(Dataset(np.zeros((3, 2)), np.zeros(3), np.zeros((1, 2)), np.zeros(1)))


# ---------------------------------------------------------------------------
# one_hot
# ---------------------------------------------------------------------------


def test_one_hot():
    y = one_hot([2, 0, 9])
    assert y.shape == (3, 10) and y.dtype == np.float64
    np.testing.assert_array_equal(y.argmax(axis=1), [2, 0, 9])
    np.testing.assert_array_equal(y.sum(axis=1), 1)
    assert one_hot(np.array([[1, 2]]), n_classes=3, dtype=np.float32).shape == (1, 2, 3)
    assert one_hot(np.array([1.0, 2.0]), 3).tolist() == [[0, 1, 0], [0, 0, 1]]
    assert one_hot([], 4).shape == (0, 4)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        one_hot([10])
    with pytest.raises(ValueError, match=r"0\.\.2"):
        one_hot([-1], 3)
    with pytest.raises(ValueError, match="integers"):
        one_hot([0.5])
