"""The one data loader: CIFAR-10 from a folder in the real format, digits, synthetic, splits and shards."""

import pickle

import numpy as np
import pytest

from tests.helpers.common import configured_tf, write_cifar_batch
from training.core import data


def test_cifar_dir_is_read_in_the_real_layout(tiny_cifar_dir):
    batch = pickle.load(open(tiny_cifar_dir / "data_batch_1", "rb"), encoding="bytes")
    x_train, y_train, x_test, y_test = data.read_cifar_dir(str(tiny_cifar_dir))
    assert x_train.shape == (100, 32, 32, 3) and x_test.shape == (30, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.tolist()[:20] == batch[b"labels"]
    # Channel-major rows: the first 1024 bytes are the red plane of image 0.
    assert np.array_equal(x_train[0, :, :, 0].ravel(), batch[b"data"][0, :1024])
    assert np.array_equal(x_train[0, :, :, 2].ravel(), batch[b"data"][0, 2048:])


def test_parent_of_the_batches_folder_is_accepted(tiny_cifar_dir):
    ds = data.load_dataset("cifar10", str(tiny_cifar_dir.parent), train_samples=50, test_samples=10,
                           val_fraction=0.1, seed=1)
    assert ds.sizes() == {"train": 50, "val": 6, "test": 10}
    assert ds.source.startswith("dir:") and ds.accuracy_meaningful


def test_missing_dir_names_the_setting(tmp_path):
    with pytest.raises(data.DataError, match="DATA_DIR '.*' does not exist"):
        data.load_dataset("cifar10", str(tmp_path / "nope"))


def test_dir_without_batches_names_the_expected_files(tmp_path):
    with pytest.raises(data.DataError, match="holds no CIFAR-10 batches.*data_batch_1"):
        data.load_dataset("cifar10", str(tmp_path))


def test_corrupt_batch_names_the_file(tiny_cifar_dir):
    (tiny_cifar_dir / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(data.DataError, match="data_batch_3' is not a readable CIFAR-10 batch"):
        data.read_cifar_dir(str(tiny_cifar_dir))


def test_batch_with_mismatched_labels_is_rejected(tiny_cifar_dir):
    batch = write_cifar_batch(tiny_cifar_dir / "test_batch", 30, seed=5)
    batch[b"labels"] = batch[b"labels"][:10]
    pickle.dump(batch, open(tiny_cifar_dir / "test_batch", "wb"))
    with pytest.raises(data.DataError, match="30 images but 10 labels"):
        data.read_cifar_dir(str(tiny_cifar_dir))


def test_digits_are_real_32x32_rgb_and_split_without_overlap():
    ds = data.load_dataset("digits", seed=1)
    assert ds.x_train.shape[1:] == data.IMAGE_SHAPE and ds.accuracy_meaningful
    assert ds.sizes()["train"] + ds.sizes()["val"] + ds.sizes()["test"] == 1797
    assert set(np.unique(ds.y_train)) == set(range(10))
    flat = {x.tobytes() for x in ds.x_train}
    assert not any(x.tobytes() in flat for x in ds.x_val[:50])


def test_digits_are_read_from_scikit_learns_file_as_load_digits_gives_them():
    """The loader reads the file scikit-learn ships instead of importing it (0.85 s per process): the same arrays."""
    from sklearn.datasets import load_digits

    images, labels = data.digits_arrays()
    reference = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)


def test_synthetic_says_accuracy_is_meaningless():
    ds = data.load_dataset("synthetic", train_samples=90, test_samples=20, val_fraction=0.1, seed=0)
    assert ds.sizes() == {"train": 90, "val": 10, "test": 20} and not ds.accuracy_meaningful


def test_too_many_train_samples_is_a_clear_error():
    with pytest.raises(data.DataError, match="TRAIN_SAMPLES must be at most"):
        data.load_dataset("digits", train_samples=5000)
    with pytest.raises(data.DataError, match="TEST_SAMPLES must be at most 359"):
        data.load_dataset("digits", test_samples=100000)


def test_splits_are_deterministic_for_a_seed():
    a, b = data.load_dataset("digits", seed=3), data.load_dataset("digits", seed=3)
    assert np.array_equal(a.y_train, b.y_train) and np.array_equal(a.x_test, b.x_test)


@pytest.mark.parametrize("n,world,batch", [(1294, 2, 64), (1000, 3, 32), (50000, 2, 64), (129, 2, 64)])
def test_training_shards_are_disjoint_equal_whole_batches(n, world, batch):
    shards = [data.shard_indices(n, r, world, batch) for r in range(world)]
    sizes = {len(s) for s in shards}
    assert len(sizes) == 1 and sizes.pop() % batch == 0
    union = np.concatenate(shards)
    assert len(np.unique(union)) == len(union) and union.max() < n


def test_too_few_images_for_the_workers_is_a_clear_error():
    with pytest.raises(data.DataError, match="too few for 4 workers"):
        data.shard_indices(100, 0, 4, 64)


def test_even_shards_cover_everything_when_asked():
    parts = [data.even_shard(11, r, 3, drop_remainder=False) for r in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(11))
    assert {len(data.even_shard(11, r, 3)) for r in range(3)} == {3}


def test_a_resumed_pipeline_continues_the_undisturbed_order():
    tf = configured_tf()
    # A run resumed after epoch 2 must see epoch 3's batches, not replay epoch 1's.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(48, 32, 32, 3), dtype=np.uint8)
    y = np.arange(48)  # labels double as image ids
    steps, resumed_after = 6, 2

    def label_batches(skip, count):
        tf.random.set_seed(7)  # what build_model does in every attempt before the pipeline is made
        ds = data.make_tf_dataset(x, y, 8, shuffle_seed=3, drop_remainder=True, repeat=True, skip_batches=skip)
        return [tuple(labels.numpy()) for _, labels in ds.take(count)]

    undisturbed = label_batches(0, steps * (resumed_after + 1))
    resumed = label_batches(steps * resumed_after, steps)
    assert resumed == undisturbed[steps * resumed_after:]
    assert resumed != undisturbed[:steps], "epoch 3's order differs from epoch 1's"
    assert sorted(sum(resumed, ())) == list(range(48)), "one whole pass, each image once"
