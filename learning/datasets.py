"""Datasets for the learning experiments: IDX files, MNIST, and the embedded digits.

Everything here needs only numpy.

* :func:`read_idx` reads one IDX file (the format of the MNIST distribution),
  plain or gzip-compressed, and checks it thoroughly.
* :func:`load_mnist` reads the standard MNIST files from a folder the user gives.
* :func:`load_embedded` returns the 3000 + 1000 MNIST digits shipped inside the
  package (``learning/data/embedded_digits.npz``, see ``learning/data/README.md``),
  so examples and tests run without downloading anything.
* :class:`Dataset` holds train and test splits; :meth:`Dataset.subset` takes a
  deterministic class-balanced (or plain random) subset; :func:`load_dataset`
  is the one-call entry point.
* :func:`one_hot` encodes integer labels.

Images come back flattened, ``(N, 784)``, as floats in ``[0, 1]`` (pixel / 255);
labels as ``int64`` in ``0..9``.  Every problem with the files raises
:class:`DatasetError` (a :class:`ValueError`) with a message that names the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

import numpy as np
from numpy.typing import DTypeLike

__all__ = [
    "EMBEDDED_FILE",
    "IDX_TYPES",
    "MNIST_FILES",
    "Dataset",
    "DatasetError",
    "load_dataset",
    "load_embedded",
    "load_mnist",
    "one_hot",
    "read_idx",
]


class DatasetError(ValueError):
    """A dataset file is missing, malformed or inconsistent."""


#: IDX type codes (third byte of the magic number) and their big-endian dtypes.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}

#: Base names of the MNIST files per split, in the standard spelling.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_IMAGES_MAGIC = 0x00000803
_MNIST_LABELS_MAGIC = 0x00000801
_MNIST_SHAPE = (28, 28)
_MNIST_CLASSES = 10

#: File name of the embedded digits inside the ``learning`` package.
EMBEDDED_FILE = "data/embedded_digits.npz"

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 24


# ---------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _describe_magic(magic: int) -> str:
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    kind = _IDX_TYPE_NAMES.get(code, f"unknown type 0x{code:02x}")
    return f"0x{magic:08x}: {kind}, {ndim} dimension{'s' if ndim != 1 else ''}"


def _read_exactly(fh: IO[bytes], n: int) -> bytearray:
    """Read up to ``n`` bytes, growing the buffer only as data arrives."""
    buf = bytearray()
    while len(buf) < n:
        chunk = fh.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _count_rest(fh: IO[bytes]) -> int:
    n = 0
    while chunk := fh.read(_CHUNK):
        n += len(chunk)
    return n


def read_idx(path: str | os.PathLike, *, expect_magic: int | None = None) -> np.ndarray:
    """Read one IDX file, plain or gzip-compressed.

    The IDX format: two zero bytes, a type code (``0x08`` unsigned byte,
    ``0x09`` signed byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
    ``0x0E`` float64), the number of dimensions, then one big-endian uint32
    size per dimension, then the data, big-endian, in C order.  Compression is
    recognised by the gzip magic bytes, whatever the file is called.

    Parameters
    ----------
    path
        The file.
    expect_magic
        If given, the whole 4-byte magic number the file must carry, e.g.
        ``0x00000803`` (unsigned bytes, 3 dimensions: MNIST images) or
        ``0x00000801`` (MNIST labels).

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order, shaped as the header says.

    Raises
    ------
    DatasetError
        The file is missing, is not IDX (bad magic number; the message shows
        the bytes found), is truncated (the message says how many bytes were
        expected and found), has bytes after the data, or is a corrupt gzip
        stream.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise DatasetError(f"IDX file {what}: {path}")
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            fh: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            try:
                return _parse_idx(fh, path, expect_magic)
            finally:
                if compressed:
                    fh.close()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetError(f"corrupt or truncated gzip data in {path}: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc


def _parse_idx(fh: IO[bytes], path: Path, expect_magic: int | None) -> np.ndarray:
    where = f"{path} (after gunzip)" if isinstance(fh, gzip.GzipFile) else str(path)
    head = _read_exactly(fh, 4)
    if len(head) < 4:
        raise DatasetError(
            f"truncated IDX file {where}: expected at least 4 bytes of magic number, found {len(head)}"
            + (f" ({_hex(head)})" if head else "")
        )
    magic = int.from_bytes(head, "big")
    code, ndim = head[2], head[3]
    if head[0] != 0 or head[1] != 0 or code not in IDX_TYPES or ndim == 0:
        raise DatasetError(
            f"bad magic number in {where}: found bytes {_hex(head)}; an IDX file starts with 00 00, "
            f"a type code ({', '.join(f'{c:02x}' for c in IDX_TYPES)}) and a dimension count >= 1"
            + (f", here expected {_hex(expect_magic.to_bytes(4, 'big'))}" if expect_magic is not None else "")
        )
    if expect_magic is not None and magic != expect_magic:
        raise DatasetError(
            f"bad magic number in {where}: found bytes {_hex(head)} ({_describe_magic(magic)}), "
            f"expected {_hex(expect_magic.to_bytes(4, 'big'))} ({_describe_magic(expect_magic)})"
        )
    header_size = 4 + 4 * ndim
    sizes_raw = _read_exactly(fh, 4 * ndim)
    if len(sizes_raw) < 4 * ndim:
        raise DatasetError(
            f"truncated IDX file {where}: the header of {ndim} dimensions needs {header_size} bytes, "
            f"found {4 + len(sizes_raw)}"
        )
    shape = tuple(int.from_bytes(sizes_raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
    dtype = IDX_TYPES[code]
    count = 1
    for s in shape:
        count *= s
    n_data = count * dtype.itemsize
    data = _read_exactly(fh, n_data)
    if len(data) < n_data:
        raise DatasetError(
            f"truncated IDX file {where}: shape {shape} of {_IDX_TYPE_NAMES[code]} needs "
            f"{header_size + n_data} bytes ({header_size} header + {n_data} data), found {header_size + len(data)}"
        )
    extra = _count_rest(fh)
    if extra:
        raise DatasetError(
            f"trailing bytes in IDX file {where}: shape {shape} of {_IDX_TYPE_NAMES[code]} needs "
            f"{header_size + n_data} bytes, found {header_size + n_data + extra} ({extra} too many)"
        )
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


# ---------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------


def _float_dtype(dtype: DTypeLike) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _candidates(base: str) -> list[str]:
    # "train-images-idx3-ubyte" and the common variant "train-images.idx3-ubyte", plain or .gz
    stem, _, rest = base.rpartition("-idx")
    names = [base, f"{stem}.idx{rest}"]
    return [n + ext for n in names for ext in ("", ".gz")]


def _find_file(folder: Path, base: str, what: str) -> Path:
    names = _candidates(base)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"no MNIST {what} file in {folder}: expected one of {', '.join(names)}")


def _check_dir(data_dir: str | os.PathLike | None, who: str) -> Path:
    if data_dir is None:
        raise DatasetError(
            f"{who} needs data_dir: the folder holding the MNIST IDX files "
            "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte, plain or .gz)"
        )
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DatasetError(f"MNIST folder {what}: {folder}")
    return folder


def _to_float(images: np.ndarray, dtype: np.dtype) -> np.ndarray:
    x = images.reshape(images.shape[0], int(np.prod(images.shape[1:]))).astype(dtype)
    x /= 255
    return x


def load_mnist(
    data_dir: str | os.PathLike,
    split: Literal["train", "test"] = "train",
    *,
    dtype: DTypeLike = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of MNIST from the standard IDX files in a folder.

    Parameters
    ----------
    data_dir
        Folder holding the files.  For ``split="train"`` it needs
        ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``, for
        ``"test"`` ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``;
        each may also be spelt ``train-images.idx3-ubyte`` (dot before
        ``idx``) and may be gzip-compressed with a ``.gz`` suffix.
    split
        ``"train"`` (60000 digits) or ``"test"`` (10000 digits).
    dtype
        ``float64`` (default) or ``float32``, for the images.

    Returns
    -------
    images : numpy.ndarray
        ``(N, 784)``, pixel / 255, in ``[0, 1]``.
    labels : numpy.ndarray
        ``(N,)``, ``int64`` in ``0..9``.

    Raises
    ------
    DatasetError
        Folder or file missing (the message lists the names looked for), a
        malformed file (see :func:`read_idx`), images not 28×28, different
        numbers of images and labels, labels outside ``0..9``.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dt = _float_dtype(dtype)
    folder = _check_dir(data_dir, "load_mnist")
    images_base, labels_base = MNIST_FILES[split]
    images_path = _find_file(folder, images_base, f"{split} images")
    labels_path = _find_file(folder, labels_base, f"{split} labels")
    images = read_idx(images_path, expect_magic=_MNIST_IMAGES_MAGIC)
    labels = read_idx(labels_path, expect_magic=_MNIST_LABELS_MAGIC)
    if images.shape[1:] != _MNIST_SHAPE:
        raise DatasetError(f"MNIST images in {images_path} are {images.shape[1]}×{images.shape[2]}, expected 28×28")
    if len(images) != len(labels):
        raise DatasetError(
            f"MNIST {split} images and labels disagree: {len(images)} images in {images_path}, "
            f"{len(labels)} labels in {labels_path}"
        )
    if len(labels) and labels.max() >= _MNIST_CLASSES:
        bad = np.flatnonzero(labels >= _MNIST_CLASSES)
        raise DatasetError(
            f"MNIST labels outside 0..9 in {labels_path}: {len(bad)} of them, the first "
            f"{int(labels[bad[0]])} at index {int(bad[0])}"
        )
    return _to_float(images, dt), labels.astype(np.int64)


# ---------------------------------------------------------------------------
# Dataset container
# ---------------------------------------------------------------------------


def _balanced_quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """As equal as possible per class, capped at what each class has (water filling)."""
    quotas = np.zeros_like(counts)
    remaining = size
    while remaining > 0:
        open_ = np.flatnonzero(quotas < counts)
        share, extra = divmod(remaining, len(open_))
        add = np.full(len(open_), share)
        add[:extra] += 1  # the lowest labels get the remainder
        add = np.minimum(add, counts[open_] - quotas[open_])
        quotas[open_] += add
        remaining -= int(add.sum())
    return quotas


def _pick(y: np.ndarray, size: int | None, rng: np.random.Generator, balanced: bool, split: str) -> np.ndarray | None:
    if size is None:
        return None
    size = int(size)
    if not 0 <= size <= len(y):
        raise ValueError(f"{split}_size must be in 0..{len(y)}, got {size}")
    if not balanced:
        return np.sort(rng.choice(len(y), size=size, replace=False))
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quotas = _balanced_quotas(counts, size)
    picked = [rng.choice(np.flatnonzero(inverse == k), size=q, replace=False) for k, q in enumerate(quotas) if q > 0]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.intp)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test splits of a labelled dataset.

    Attributes
    ----------
    x_train, x_test
        ``(N, n_features)`` float arrays.
    y_train, y_test
        ``(N,)`` integer labels.
    name
        ``"mnist"``, ``"embedded"``, ...
    train_index, test_index
        Where each sample sits in the original files (e.g. the MNIST IDX
        files), or ``None`` if unknown.  Kept through :meth:`subset`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "dataset"
    train_index: np.ndarray | None = None
    test_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y, idx = getattr(self, f"x_{split}"), getattr(self, f"y_{split}"), getattr(self, f"{split}_index")
            if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(f"{split} split: expected x (N, features) and y (N,), got {x.shape} and {y.shape}")
            if idx is not None and idx.shape != y.shape:
                raise ValueError(f"{split}_index has shape {idx.shape}, expected {y.shape}")
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(f"train and test have {self.x_train.shape[1]} and {self.x_test.shape[1]} features")

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return len(self.y_test)

    @property
    def n_features(self) -> int:
        """Number of input features (784 for MNIST)."""
        return self.x_train.shape[1]

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, n_features={self.n_features})"
        )

    def subset(
        self,
        train_size: int | None = None,
        test_size: int | None = None,
        seed: int = 0,
        *,
        balanced: bool = True,
    ) -> Dataset:
        """A deterministic subset of each split.

        Parameters
        ----------
        train_size, test_size
            Number of samples to keep; ``None`` keeps the whole split.
        seed
            The same seed gives the same subset.  Train and test draw from
            independent streams of it.
        balanced
            ``True``: as many samples of each class as possible (the sizes
            differ by at most one between classes, the lowest labels getting
            the remainder, unless a class runs out).  ``False``: a uniform
            random sample without replacement.

        Returns
        -------
        Dataset
            Same name; samples keep their original order.
        """
        rng_train, rng_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        changes: dict[str, np.ndarray | None] = {}
        for split, size, rng in (("train", train_size, rng_train), ("test", test_size, rng_test)):
            keep = _pick(getattr(self, f"y_{split}"), size, rng, balanced, split)
            if keep is None:
                continue
            changes[f"x_{split}"] = getattr(self, f"x_{split}")[keep]
            changes[f"y_{split}"] = getattr(self, f"y_{split}")[keep]
            index = getattr(self, f"{split}_index")
            changes[f"{split}_index"] = None if index is None else index[keep]
        return replace(self, **changes)


# ---------------------------------------------------------------------------
# Embedded digits and the entry point
# ---------------------------------------------------------------------------

_EMBEDDED_KEYS = ("train_images", "train_labels", "test_images", "test_labels", "train_indices", "test_indices")


def load_embedded(*, dtype: DTypeLike = np.float64) -> Dataset:
    """The MNIST digits shipped with the package: 3000 training, 1000 test.

    A fixed, class-balanced selection (300 / 100 per class) from the MNIST
    training and test sets, made by ``learning/data/build_embedded.py``; see
    ``learning/data/README.md``.  MNIST (Y. LeCun, C. Cortes, C. J. C. Burges)
    is distributed under CC BY-SA 3.0.

    Parameters
    ----------
    dtype
        ``float64`` (default) or ``float32``, for the images.

    Returns
    -------
    Dataset
        Named ``"embedded"``; images ``(N, 784)`` in ``[0, 1]``, labels
        ``int64``; ``train_index`` / ``test_index`` give each digit's position
        in the original MNIST training / test file.
    """
    dt = _float_dtype(dtype)
    # beside this module (not importlib.resources: an editable install may register ``learning`` as a namespace)
    ref = Path(__file__).resolve().parent / EMBEDDED_FILE
    try:
        with np.load(ref, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in _EMBEDDED_KEYS}
    except FileNotFoundError as exc:
        raise DatasetError(
            f"the embedded digits are missing ({ref}); rebuild them with "
            "`python learning/data/build_embedded.py --mnist-dir PATH`"
        ) from exc
    except KeyError as exc:
        raise DatasetError(f"the embedded digits file {ref} lacks the array {exc}") from exc
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != _MNIST_SHAPE or len(images) != len(labels):
            raise DatasetError(f"the embedded digits file {ref} is malformed ({split}: {images.shape}, {labels.shape})")
    return Dataset(
        x_train=_to_float(arrays["train_images"], dt),
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=_to_float(arrays["test_images"], dt),
        y_test=arrays["test_labels"].astype(np.int64),
        name="embedded",
        train_index=arrays["train_indices"].astype(np.int64),
        test_index=arrays["test_indices"].astype(np.int64),
    )


def load_dataset(
    name: Literal["mnist", "embedded"],
    data_dir: str | os.PathLike | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    *,
    balanced: bool = True,
    dtype: DTypeLike = np.float64,
) -> Dataset:
    """Load a dataset by name, optionally a deterministic subset of it.

    Parameters
    ----------
    name
        ``"mnist"`` (the full MNIST from ``data_dir``, see :func:`load_mnist`)
        or ``"embedded"`` (the digits shipped with the package, see
        :func:`load_embedded`; ``data_dir`` is ignored).
    data_dir
        Folder of the MNIST IDX files; required for ``"mnist"``.
    train_size, test_size, seed, balanced
        Passed to :meth:`Dataset.subset`; ``None`` keeps the whole split.
    dtype
        ``float64`` (default) or ``float32``, for the images.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        ``"mnist"`` without ``data_dir``, or with one that does not exist,
        or any problem with the files.
    ValueError
        An unknown name, or a subset size larger than the split.
    """
    if name == "mnist":
        folder = _check_dir(data_dir, "load_dataset('mnist')")
        x_train, y_train = load_mnist(folder, "train", dtype=dtype)
        x_test, y_test = load_mnist(folder, "test", dtype=dtype)
        data = Dataset(
            x_train,
            y_train,
            x_test,
            y_test,
            name="mnist",
            train_index=np.arange(len(y_train)),
            test_index=np.arange(len(y_test)),
        )
    elif name == "embedded":
        data = load_embedded(dtype=dtype)
    else:
        raise ValueError(f"unknown dataset {name!r}: expected 'mnist' or 'embedded'")
    if train_size is None and test_size is None:
        return data
    return data.subset(train_size, test_size, seed, balanced=balanced)


def one_hot(labels: Sequence[int] | np.ndarray, n_classes: int = 10, dtype: DTypeLike = float) -> np.ndarray:
    """One-hot encode integer labels.

    Parameters
    ----------
    labels
        Integer labels in ``0..n_classes-1``, any shape (integer-valued
        floats are accepted).
    n_classes
        Number of classes.
    dtype
        Of the result.

    Returns
    -------
    numpy.ndarray
        Shape ``labels.shape + (n_classes,)``, 1 at each label, 0 elsewhere.

    Raises
    ------
    ValueError
        Labels that are not integers or are outside ``0..n_classes-1``.
    """
    y = np.asarray(labels)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}, found {int(y.min())}..{int(y.max())}")
    return np.eye(n_classes, dtype=dtype)[y]
