"""Build ``embedded_digits.npz``: a small, fixed, class-balanced selection of MNIST.

Usage (from the repository root)::

    python learning/data/build_embedded.py --mnist-dir PATH

``PATH`` holds the four standard MNIST IDX files (plain or .gz).  The script
picks, with a fixed seed, 300 training digits of each class from the MNIST
training set and 100 test digits of each class from the MNIST test set, and
writes them (uint8 images ``(N, 28, 28)``, uint8 labels, and the indices into the
original files, sorted) next to itself, atomically.

The file is an ordinary ``np.savez_compressed`` archive (``np.load`` reads it);
it is written by :func:`savez_reproducible`, which does what
``np.savez_compressed`` does but with fixed zip timestamps, so rebuilding gives
the same bytes and the same SHA256.

This script is not imported by the package; :func:`learning.datasets.load_embedded`
reads its output.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from circuits.atomic import atomic_open
from learning.datasets import MNIST_FILES, load_mnist

SEED = 20240229
TRAIN_PER_CLASS = 300
TEST_PER_CLASS = 100
N_CLASSES = 10
OUTPUT = Path(__file__).resolve().with_name("embedded_digits.npz")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def select_balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` samples of each class 0..9, drawn without replacement, sorted."""
    picked = []
    for k in range(N_CLASSES):
        members = np.flatnonzero(labels == k)
        if len(members) < per_class:
            raise SystemExit(f"class {k} has only {len(members)} samples, need {per_class}")
        picked.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picked))


def savez_reproducible(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, written atomically."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # the temporary file was private (0600)


def _uint8_images(x: np.ndarray) -> np.ndarray:
    images = np.rint(x * 255).astype(np.uint8).reshape(-1, 28, 28)
    if not np.array_equal(images / 255, x.reshape(-1, 28, 28)):
        raise SystemExit("pixel values did not round-trip to uint8")
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", required=True, type=Path, help="folder of the MNIST IDX files (plain or .gz)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"where to write (default: {OUTPUT})")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(SEED)
    arrays: dict[str, np.ndarray] = {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        x, y = load_mnist(args.mnist_dir, split)
        index = select_balanced(y, per_class, rng)
        arrays[f"{split}_images"] = _uint8_images(x[index])
        arrays[f"{split}_labels"] = y[index].astype(np.uint8)
        arrays[f"{split}_indices"] = index.astype(np.int32)
    arrays["seed"] = np.array(SEED, dtype=np.int64)
    arrays["source_files"] = np.array([name for split in ("train", "test") for name in MNIST_FILES[split]])

    savez_reproducible(args.output, arrays)

    data = args.output.read_bytes()
    with np.load(args.output, allow_pickle=False) as npz:
        for key, value in arrays.items():
            if not (np.array_equal(npz[key], value) and npz[key].dtype == value.dtype):
                raise SystemExit(f"{args.output}: {key} did not read back as written")
    for split in ("train", "test"):
        counts = np.bincount(arrays[f"{split}_labels"], minlength=N_CLASSES)
        print(f"{split}: {len(arrays[f'{split}_labels'])} digits, per class {counts.tolist()}")
    print(f"wrote {args.output}: {len(data)} bytes ({len(data) / 2**20:.2f} MiB)")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
