"""Built-in mnist1d and the disk readers: npy (Unseen-NAS), MNIST IDX, CIFAR-100, image size
guard. Every file is built here, small; nothing is downloaded."""

from __future__ import annotations

import gzip
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.errors import ConfigError, NotFound
from workbench.tasks import get_task, mnist1d_arrays


# -- mnist1d ----------------------------------------------------------------------------------------
def test_mnist1d_is_generated_seeded_and_leaves_global_generators_alone():
    random.seed(5)
    np.random.seed(5)
    before = (random.random(), np.random.random())
    random.seed(5)
    np.random.seed(5)
    task = get_task("mnist1d", num_samples=400, seed=1)
    assert (random.random(), np.random.random()) == before  # make_dataset's set_seed undone
    assert task.input_shape == (1, 1, 40) and task.num_classes == 10
    assert task.sizes == {"train": 272, "val": 48, "test": 80}  # the package's 80/20 cut
    again = get_task("mnist1d", num_samples=400, seed=1)
    assert torch.equal(task.x_train, again.x_train) and torch.equal(task.y_val, again.y_val)
    other_split = get_task("mnist1d", num_samples=400, seed=2)
    assert torch.equal(task.y_test, other_split.y_test)  # the test split is fixed ...
    assert not torch.equal(task.y_val, other_split.y_val)  # ... validation is drawn by seed
    x, y, _, _ = mnist1d_arrays(400, 42)
    x2, _, _, _ = mnist1d_arrays(400, 7)
    assert x.shape == (320, 40) and not np.array_equal(x, x2)  # data_seed makes other data
    assert sorted(set(y.tolist())) == list(range(10))


def test_mnist1d_rejects_tiny_sizes():
    with pytest.raises(ConfigError, match="expected num_samples >= 100, found 10"):
        get_task("mnist1d", num_samples=10)


# -- npy folders (Unseen-NAS layout) ------------------------------------------------------------------
def _write_npy(root, parts=("train", "valid", "test"), n=(40, 12, 10), shape=(3, 6, 6)):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for part, size in zip(parts, n):
        np.save(root / f"{part}_x.npy", rng.normal(size=(size, *shape)).astype(np.float32))
        np.save(root / f"{part}_y.npy", np.arange(size) % 4)


def test_npy_folder_uses_the_given_valid_split_as_given(tmp_path):
    _write_npy(tmp_path / "addnist")
    task = get_task(f"npy:{tmp_path / 'addnist'}")
    assert task.sizes == {"train": 40, "val": 12, "test": 10} and task.input_shape == (3, 6, 6)
    raw_val = np.load(tmp_path / "addnist" / "valid_x.npy")
    restored = task.x_val.numpy() * np.array(task.std)[:, None, None] \
        + np.array(task.mean)[:, None, None]
    assert np.allclose(restored, raw_val, atol=1e-5)  # same samples, same order
    train = np.load(tmp_path / "addnist" / "train_x.npy")
    assert np.allclose(task.mean, train.mean(axis=(0, 2, 3)), atol=1e-5)  # train stats only
    with pytest.raises(ConfigError, match="expected no val_fraction"):
        get_task(f"npy:{tmp_path / 'addnist'}", val_fraction=0.2)


def test_npy_folder_without_valid_splits_train_stratified(tmp_path):
    _write_npy(tmp_path / "d", parts=("train", "test"), n=(40, 10))
    task = get_task(f"npy:{tmp_path / 'd'}", val_fraction=0.25)
    assert task.sizes == {"train": 30, "val": 10, "test": 10}
    assert sorted(task.y_val.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]


def test_npy_folder_errors(tmp_path):
    with pytest.raises(NotFound, match="expected a folder of train_x.npy"):
        get_task(f"npy:{tmp_path / 'none'}")
    _write_npy(tmp_path / "a")
    (tmp_path / "a" / "valid_y.npy").unlink()
    with pytest.raises(NotFound, match="expected both valid_x.npy and valid_y.npy .* found no "
                                       "valid_y.npy"):
        get_task(f"npy:{tmp_path / 'a'}")
    _write_npy(tmp_path / "b")
    np.save(tmp_path / "b" / "test_x.npy", np.zeros((10, 3, 5, 5), np.float32))
    with pytest.raises(ConfigError, match=r"expected test samples of shape \[3, 6, 6\] .* found "
                                          r"\[3, 5, 5\]"):
        get_task(f"npy:{tmp_path / 'b'}")
    _write_npy(tmp_path / "c")
    np.save(tmp_path / "c" / "train_y.npy", np.array([object()] * 40), allow_pickle=True)
    with pytest.raises(ConfigError, match="expected a numeric .npy array at .*train_y.npy"):
        get_task(f"npy:{tmp_path / 'c'}")


# -- MNIST IDX ---------------------------------------------------------------------------------------
def _idx(array: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def _write_mnist(root, gz: bool, n=(30, 10)):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, size in zip(("train", "t10k"), n):
        for kind, array in (("images", rng.integers(0, 256, (size, 28, 28))),
                            ("labels", np.arange(size) % 10)):
            data = _idx(array)
            name = root / f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
            if gz:
                (name.parent / (name.name + ".gz")).write_bytes(gzip.compress(data))
            else:
                name.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files_gzipped_or_not(tmp_path, gz):
    _write_mnist(tmp_path / "fashion", gz)
    task = get_task(f"mnist:{tmp_path / 'fashion'}", val_fraction=1 / 3)
    assert task.input_shape == (1, 28, 28) and task.num_classes == 10
    assert task.sizes == {"train": 20, "val": 10, "test": 10}
    raw = np.frombuffer((gzip.decompress if gz else bytes)(
        next((tmp_path / "fashion").glob("t10k-images*")).read_bytes())[16:], np.uint8)
    restored = task.x_test[:, 0].numpy() * task.std[0] + task.mean[0]
    assert np.allclose(restored.ravel(), raw, atol=1e-3)


def test_mnist_idx_errors_say_expected_found_where(tmp_path):
    with pytest.raises(NotFound, match="expected train-images-idx3-ubyte .or .gz. in"):
        get_task(f"mnist:{tmp_path}")
    root = tmp_path / "m"
    _write_mnist(root, gz=False)
    images = root / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(b"\x00\x01" + good[2:])
    with pytest.raises(ConfigError, match=r"expected an IDX header .* in .*train-images-idx3-ubyte,"
                                          r" found 0x00010803"):
        get_task(f"mnist:{root}")
    images.write_bytes(good[:-5])
    with pytest.raises(ConfigError, match=r"expected 23520 data bytes for shape \[30, 28, 28\] "
                                          r"in .*, found 23515 bytes"):
        get_task(f"mnist:{root}")
    images.write_bytes(_idx(np.zeros((30, 784))))
    with pytest.raises(ConfigError, match="expected a 3-dimensional IDX array in .*, found 2"):
        get_task(f"mnist:{root}")
    images.write_bytes(good)
    (root / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.zeros(9)))
    with pytest.raises(ConfigError, match=r"expected one label per image in .* \(t10k\), found "
                                          r"10 images and 9 labels"):
        get_task(f"mnist:{root}")
    (root / "t10k-labels-idx1-ubyte").unlink()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.zeros(10)))[:-8])
    with pytest.raises(ConfigError, match="expected a readable gzip file at"):
        get_task(f"mnist:{root}")


# -- CIFAR-100 -----------------------------------------------------------------------------------------
def _write_cifar100(root, n=40, meta=True):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name, size in (("train", n), ("test", n // 2)):
        batch = {b"data": rng.integers(0, 256, (size, 3072), dtype=np.uint8),
                 b"fine_labels": [int(v) for v in np.arange(size) % 4],
                 b"coarse_labels": [int(v) for v in np.arange(size) % 2]}
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    if meta:
        with open(root / "meta", "wb") as fh:
            pickle.dump({b"fine_label_names": [b"apple", b"bee", b"cup", b"dog"],
                         b"coarse_label_names": [b"fruit", b"insect"]}, fh, protocol=2)


def test_cifar100_fine_and_coarse_labels_with_names(tmp_path):
    _write_cifar100(tmp_path / "cifar-100-python")
    fine = get_task(f"cifar100:{tmp_path}", val_fraction=0.25)
    assert fine.num_classes == 4 and fine.class_names == ("apple", "bee", "cup", "dog")
    assert fine.sizes == {"train": 30, "val": 10, "test": 20} and fine.input_shape == (3, 32, 32)
    coarse = get_task(f"cifar100:{tmp_path}", labels="coarse")
    assert coarse.num_classes == 2 and coarse.class_names == ("fruit", "insect")
    with pytest.raises(ConfigError, match="expected labels fine or coarse, found 'both'"):
        get_task(f"cifar100:{tmp_path}", labels="both")


def test_cifar100_errors(tmp_path):
    with pytest.raises(NotFound, match="expected a CIFAR-100 directory at"):
        get_task(f"cifar100:{tmp_path / 'nope'}")
    _write_cifar100(tmp_path / "c", meta=False)
    assert get_task(f"cifar100:{tmp_path / 'c'}").class_names == ("0", "1", "2", "3")
    with open(tmp_path / "c" / "test", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]}, fh)
    with pytest.raises(ConfigError, match=r"expected b'data' of shape \[N, 3072\] .* found data "
                                          r"\[2, 100\]"):
        get_task(f"cifar100:{tmp_path / 'c'}")
    (tmp_path / "c" / "train").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ConfigError, match="expected a pickled CIFAR-100 batch at .*train"):
        get_task(f"cifar100:{tmp_path / 'c'}")


# -- image folders: size guard -------------------------------------------------------------------------
def test_image_folder_refuses_oversized_images_from_the_header(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("L", (64, 48)).save(tmp_path / cls / f"{i}.png")
    with pytest.raises(ConfigError, match=r"expected images of at most 1,000 pixels \(max_pixels\) "
                                          r"at .*0.png, found 64x48"):
        get_task(f"folder:{tmp_path}", max_pixels=1000)
    assert get_task(f"folder:{tmp_path}").input_shape == (1, 48, 64)


def test_augment_is_a_task_option_for_image_readers(tmp_path):
    _write_cifar100(tmp_path / "c")
    task = get_task(f"cifar100:{tmp_path / 'c'}", augment="crop+flip")
    assert task.augment == ("crop", "flip") and task.crop_padding == 4
    assert get_task(f"cifar100:{tmp_path / 'c'}", augment="flip").crop_padding == 0


# -- docs/tasks.md -------------------------------------------------------------------------------------
def test_the_python_blocks_of_docs_tasks_run():
    text = (Path(__file__).resolve().parents[1] / "docs" / "tasks.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/tasks.md", "exec"), {})
