"""Tasks: built-in datasets, files on disk, splits, normalisation and error messages."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.errors import ConfigError, NotFound
from workbench.tasks import build_task, get_task, list_tasks, stratified_split


def _same(a, b) -> bool:
    return all(torch.equal(getattr(a, f), getattr(b, f))
               for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))


# -- digits and splits ----------------------------------------------------------------------------
def test_digits_shapes_splits_and_dtypes():
    task = get_task("digits")
    assert task.input_shape == (1, 8, 8) and task.num_classes == 10 and task.metric == "accuracy"
    assert sum(task.sizes.values()) == 1797
    assert task.sizes == {"train": 1257, "val": 270, "test": 270}  # 70/15/15
    assert task.x_train.shape == (1257, 1, 8, 8) and task.x_train.dtype == torch.float32
    assert task.y_train.dtype == torch.int64 and task.y_train.device.type == "cpu"
    assert set(task.y_val.tolist()) == set(range(10))


def test_normalisation_uses_training_split_only():
    # each sample's value is its index, so any statistic over val/test would shift the mean
    n = 200
    x = np.arange(n, dtype=np.float64)[:, None, None, None] * np.ones((1, 2, 2, 2))
    y = np.arange(n) % 2
    task = build_task("index", x, y, seed=3)
    train_idx, _, _ = stratified_split(y, (0.7, 0.15, 0.15), np.random.default_rng(3))
    assert task.mean[0] == pytest.approx(train_idx.mean())
    assert task.mean[0] != pytest.approx(x.mean())
    raw_train = task.x_train[:, 0, 0, 0].double() * task.std[0] + task.mean[0]
    assert sorted(raw_train.round().long().tolist()) == train_idx.tolist()
    assert task.x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (task.x_train.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4
    assert task.x_val.mean().abs() > 1e-3  # val is normalised with train stats, not its own


def test_same_seed_same_splits_different_seed_different():
    assert _same(get_task("digits", seed=1), get_task("digits", seed=1))
    a, b = get_task("digits", seed=1), get_task("digits", seed=2)
    assert not torch.equal(a.y_val, b.y_val) or not torch.equal(a.x_val, b.x_val)


def test_stratified_split_is_disjoint_complete_and_proportional():
    y = np.repeat(np.arange(5), [100, 50, 30, 12, 8])
    parts = stratified_split(y, (0.7, 0.15, 0.15), np.random.default_rng(0))
    together = np.concatenate(parts)
    assert len(together) == len(y) and len(np.unique(together)) == len(y)
    assert [len(p) for p in parts[1:]] == [30, 30]  # round(200 * 0.15)
    for part, frac in zip(parts, (0.7, 0.15, 0.15)):
        counts = np.bincount(y[part], minlength=5)
        assert np.all(np.abs(counts - np.bincount(y) * frac) <= 1), counts


def test_digits_splits_are_stratified():
    task = get_task("digits", seed=5)
    overall = np.bincount(np.concatenate([task.y_train, task.y_val, task.y_test]), minlength=10)
    val = np.bincount(task.y_val.numpy(), minlength=10)
    assert np.all(np.abs(val - overall * 0.15) <= 1)


def test_synthetic_options_determinism_and_to():
    task = get_task("synthetic", seed=0, n=96, shape=(2, 6, 6), classes=3)
    assert task.input_shape == (2, 6, 6) and task.num_classes == 3 and sum(task.sizes.values()) == 96
    assert _same(task, get_task("synthetic", seed=0, n=96, shape=(2, 6, 6), classes=3))
    assert not _same(task, get_task("synthetic", seed=1, n=96, shape=(2, 6, 6), classes=3))
    assert task.to("cpu") is task
    with pytest.raises(ConfigError, match="shape"):
        get_task("synthetic", shape=(8, 8))


def test_list_tasks_registry():
    entries = {t["name"]: t for t in list_tasks()}
    assert {"mnist1d", "digits", "synthetic", "synthetic-cifar", "npz", "npy", "folder", "cifar10",
            "cifar100", "mnist"} <= set(entries)
    assert entries["digits"]["input_shape"] == [1, 8, 8] and not entries["digits"]["needs_path"]
    assert entries["npz"]["needs_path"] and entries["npz"]["input_shape"] is None


def test_unknown_task_and_missing_path_give_clear_errors(tmp_path):
    with pytest.raises(NotFound, match="expected a task name .* found 'imagenet'"):
        get_task("imagenet")
    with pytest.raises(ConfigError, match="expected mnist:PATH"):
        get_task("mnist")
    with pytest.raises(ConfigError, match="expected npz:PATH"):
        get_task("npz")
    with pytest.raises(ConfigError, match="expected no path"):
        get_task("digits:/tmp/x")
    with pytest.raises(ConfigError, match="val_fraction"):
        get_task("digits", val_fraction=1.5)


# -- npz ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout,shape,expected", [
    ("nchw", (60, 3, 5, 4), (3, 5, 4)),
    ("nhwc", (60, 5, 4, 3), (3, 5, 4)),
    ("grayscale", (60, 5, 4), (1, 5, 4)),
    ("tabular", (60, 7), (1, 1, 7)),
])
def test_npz_layouts(tmp_path, layout, shape, expected):
    rng = np.random.default_rng(0)
    path = tmp_path / f"{layout}.npz"
    np.savez(path, x=rng.normal(3, 2, shape).astype(np.float32), y=np.arange(60) % 3)
    task = get_task(f"npz:{path}")
    assert task.input_shape == expected and task.num_classes == 3
    assert task.x_train.shape[1:] == expected and sum(task.sizes.values()) == 60


def test_npz_tabular_is_normalised_per_feature(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (80, 3)) * [1, 10, 100] + [0, 50, -5]
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(80) % 2)
    task = get_task(f"npz:{tmp_path / 't.npz'}")
    per_feature = task.x_train[:, 0, 0, :]
    assert per_feature.mean(0).abs().max() < 1e-5 and len(task.mean) == 3


def test_npz_with_test_split_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "split.npz"
    np.savez(path, x_train=rng.normal(size=(40, 1, 4, 4)), y_train=np.array(["cat", "dog"] * 20),
             x_test=rng.normal(size=(10, 1, 4, 4)), y_test=np.array(["dog", "cat"] * 5))
    task = get_task(f"npz:{path}", val_fraction=0.25)
    assert task.sizes == {"train": 30, "val": 10, "test": 10}
    assert task.class_names == ("cat", "dog") and task.y_test[:2].tolist() == [1, 0]


def test_npz_errors_name_path_and_expectation(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(NotFound, match=f"expected a .npz file at {missing}, found no file"):
        get_task(f"npz:{missing}")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(ConfigError, match=f"expected a .npz archive .* at {bad}"):
        get_task(f"npz:{bad}")
    keys = tmp_path / "keys.npz"
    np.savez(keys, images=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(ConfigError, match="expected arrays x, y .* found images, labels"):
        get_task(f"npz:{keys}")
    short = tmp_path / "short.npz"
    np.savez(short, x=np.zeros((4, 2, 2)), y=np.zeros(3))
    with pytest.raises(ConfigError, match=r"expected labels of shape \[4\]"):
        get_task(f"npz:{short}")
    rank = tmp_path / "rank.npz"
    np.savez(rank, x=np.zeros((4, 1, 2, 2, 2)), y=np.zeros(4))
    with pytest.raises(ConfigError, match=r"found shape \[4, 1, 2, 2, 2\]"):
        get_task(f"npz:{rank}")
    nan = tmp_path / "nan.npz"
    np.savez(nan, x=np.full((4, 3), np.nan), y=np.arange(4) % 2)
    with pytest.raises(ConfigError, match="finite"):
        get_task(f"npz:{nan}")


# -- image folder ---------------------------------------------------------------------------------
def _write_images(root, mode, sizes):
    rng = np.random.default_rng(0)
    for cls, size in zip(("circle", "square"), sizes):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / cls / f"{i}.png")


def test_image_folder_rgb_resized_to_common_size(tmp_path):
    _write_images(tmp_path / "imgs", "RGB", [(10, 8), (12, 12)])  # (W, H)
    task = get_task(f"folder:{tmp_path / 'imgs'}", size=6)
    assert task.input_shape == (3, 6, 6) and task.class_names == ("circle", "square")
    assert sum(task.sizes.values()) == 12
    default = get_task(f"folder:{tmp_path / 'imgs'}")
    assert default.input_shape == (3, 8, 10)  # the first image's size (H, W)


def test_image_folder_grayscale_and_channels_option(tmp_path):
    _write_images(tmp_path / "gray", "L", [(5, 5), (5, 5)])
    assert get_task(f"folder:{tmp_path / 'gray'}").input_shape == (1, 5, 5)
    assert get_task(f"folder:{tmp_path / 'gray'}", channels=3).input_shape == (3, 5, 5)


def test_image_folder_errors(tmp_path):
    with pytest.raises(NotFound, match=f"expected an image folder at {tmp_path / 'x'}"):
        get_task(f"folder:{tmp_path / 'x'}")
    (tmp_path / "one" / "a").mkdir(parents=True)
    with pytest.raises(ConfigError, match="expected at least 2 class folders"):
        get_task(f"folder:{tmp_path / 'one'}")
    _write_images(tmp_path / "broken", "L", [(4, 4), (4, 4)])
    (tmp_path / "broken" / "square" / "7.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="expected an image file at .*7.png"):
        get_task(f"folder:{tmp_path / 'broken'}")


# -- CIFAR-10 python batches ----------------------------------------------------------------------
def _write_cifar(root, n=20, skip=()):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        if name in skip:
            continue
        batch = {b"batch_label": name.encode(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in np.arange(n) % 10],
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)


def test_cifar10_batches(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    task = get_task(f"cifar10:{tmp_path}", val_fraction=0.1)  # parent dir accepted too
    assert task.input_shape == (3, 32, 32) and task.num_classes == 10
    assert task.sizes == {"train": 90, "val": 10, "test": 20}
    assert task.class_names[0] == "airplane"
    # pixels keep the batch layout: 1024 red, then green, then blue values, row-major
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"][0].reshape(3, 32, 32).astype(np.float64)
    restored = task.x_test[0].double().numpy() * np.array(task.std)[:, None, None] \
        + np.array(task.mean)[:, None, None]
    assert np.allclose(restored, raw, atol=1e-3)


def test_cifar10_errors(tmp_path):
    _write_cifar(tmp_path / "c", skip=("data_batch_3",))
    with pytest.raises(NotFound, match=f"expected a CIFAR-10 batch file at "
                                       f"{tmp_path / 'c' / 'data_batch_3'}, found no file"):
        get_task(f"cifar10:{tmp_path / 'c'}")
    (tmp_path / "c" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="expected a pickled CIFAR-10 batch at .*data_batch_3"):
        get_task(f"cifar10:{tmp_path / 'c'}")
    with open(tmp_path / "c" / "data_batch_3", "wb") as fh:
        pickle.dump({"images": 1}, fh)
    with pytest.raises(ConfigError, match="expected a dict with keys b'data', b'labels'"):
        get_task(f"cifar10:{tmp_path / 'c'}")


def test_cifar10_loader_refuses_code_in_pickles(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    _write_cifar(tmp_path / "c")
    with open(tmp_path / "c" / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(ConfigError, match="refusing global"):
        get_task(f"cifar10:{tmp_path / 'c'}")
    assert not marker.exists()
