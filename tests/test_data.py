import pickle

import numpy as np
import pytest

from assignment1 import data, fetch
from assignment1.fetch import DataError


def test_flip_mirrors_every_row_of_every_channel():
    X = np.arange(2 * 3072).reshape(2, 3072)
    F = data.flip(X)
    img, flipped = X.reshape(2, 3, 32, 32), F.reshape(2, 3, 32, 32)
    # pixel (c, r, col) moves to (c, r, 31 - col); rows and channels stay put
    for c, r, col in [(0, 0, 0), (1, 5, 7), (2, 31, 31), (0, 17, 16)]:
        assert flipped[1, c, r, 31 - col] == img[1, c, r, col]
    np.testing.assert_array_equal(data.flip(F), X)
    assert not np.array_equal(F, X)
    # a single flattened image works too
    np.testing.assert_array_equal(data.flip(X[0]), F[0])


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1.*(posix|os)\.system"):
        data.unpickle(path)
    assert not marker.exists()
    # the same file through plain pickle would have run the command: the test is real
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_restricted_unpickler_loads_real_batches(tmp_path):
    from cifar_format import make_batches

    path = tmp_path / "data_batch_1"
    path.write_bytes(make_batches(n_per_batch=20)["data_batch_1"])
    X, y = data.load_batch(path, n_expected=20)
    assert X.shape == (20, 3072) and X.dtype == np.uint8
    assert y.dtype == np.int64 and set(y) <= set(range(10))


def test_codecs_helper_admits_only_latin1(tmp_path):
    # _codecs.encode is admitted for protocol-2 bytes, but only as latin1 text -> bytes
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcq\x01X\x05\x00\x00\x00rot13q\x02\x86q\x03Rq\x04.")
    with pytest.raises(DataError, match="data_batch_1"):
        data.unpickle(path)


def batch_file(tmp_path, X, labels, name="data_batch_3"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps({b"data": X, b"labels": labels}, protocol=2))
    return path


def test_truncated_batch_is_named(tmp_path):
    good = pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3]}, protocol=2)
    path = tmp_path / "data_batch_4"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="data_batch_4.*truncated or corrupt"):
        data.load_batch(path)


@pytest.mark.parametrize(
    "X, labels, message",
    [
        (np.zeros((4, 3071), np.uint8), [0, 1, 2, 3], r"\(n, 3072\) uint8"),
        (np.zeros((4, 3072), np.float32), [0, 1, 2, 3], "uint8"),
        (np.zeros((4, 3072), np.uint8), [0, 1, 2], "3 labels for 4 samples"),
        (np.zeros((4, 3072), np.uint8), [0, 1, 2, 10], r"labels must lie in 0\.\.9"),
        (np.zeros((4, 3072), np.uint8), [0, -1, 2, 3], r"labels must lie in 0\.\.9"),
    ],
)
def test_bad_batches_are_refused(tmp_path, X, labels, message):
    with pytest.raises(DataError, match=f"data_batch_3.*{message}"):
        data.load_batch(batch_file(tmp_path, X, labels))


def test_wrong_sample_count_is_refused(tmp_path):
    path = batch_file(tmp_path, np.zeros((4, 3072), np.uint8), [0, 1, 2, 3])
    with pytest.raises(DataError, match="expected 10000 samples, got 4"):
        data.load_batch(path, n_expected=10000)


def test_one_hot():
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_normalization_statistics():
    X = np.array([[0, 10, 7], [4, 10, 7], [8, 10, 7]], dtype=np.uint8)
    mean, std = data.normalization_stats(X, "per_feature")
    np.testing.assert_allclose(mean, [4, 10, 7])
    # a constant feature is divided by 1 instead of 0
    np.testing.assert_allclose(std, [np.sqrt(32 / 3), 1, 1])
    mean, std = data.normalization_stats(X, "global")
    np.testing.assert_allclose(mean, np.full(3, X.mean()))
    np.testing.assert_allclose(std, np.full(3, X.std()))


def test_normalization_statistics_over_many_blocks_equal_numpy():
    # the sums run over blocks of 4096 rows: tiny data fits one; real data spans several and a partial last one
    X = np.random.default_rng(0).integers(0, 256, size=(10_000, 64), dtype=np.uint8)
    reference = X.astype(np.float64)
    mean, std = data.normalization_stats(X)
    np.testing.assert_allclose(mean, reference.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(std, reference.std(axis=0), rtol=1e-10)


def load(env, **kw):
    return data.load_cifar10(env["A1_DATA_DIR"], url=env["CIFAR10_URL"], md5=env["CIFAR10_MD5"], progress=False, **kw)


def test_load_splits_and_normalizes_with_training_statistics(tiny_env):
    ds = load(tiny_env, val_size=30)
    # tiny archive: 5 x 40 training samples, the last 30 held out, 40 test samples
    assert (ds.train.n, ds.val.n, ds.test.n) == (170, 30, 40)
    assert ds.train.X.dtype == np.float32 and ds.train.Y.shape == (170, 10)
    np.testing.assert_array_equal(ds.train.Y.argmax(1), ds.train.y)
    # statistics come from the training part only: it is standardized, validation is not exactly
    np.testing.assert_allclose(ds.train.X.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(ds.train.X.std(0), 1, atol=1e-3)
    assert np.abs(ds.val.X.mean(0)).max() > 1e-2
    # the split is deterministic: the last val_size samples of the training batches
    raw5, y5 = data.load_batch(fetch.read_provenance(tiny_env["A1_DATA_DIR"])["batch_dir"] + "/data_batch_5")
    np.testing.assert_array_equal(ds.val.y, y5[-30:])
    np.testing.assert_allclose(ds.val.X, (raw5[-30:] - ds.mean) / ds.std, atol=1e-4)
    assert ds.provenance["official"] is False
    glob = load(tiny_env, val_size=30, normalize="global", dtype="float64")
    assert glob.train.X.dtype == np.float64
    assert glob.train.X.mean() == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("normalize", ["per_feature", "global"])
def test_normalized_images_turn_back_into_the_pixels_stored(tiny_env, normalize):
    # float32 rows, normalized by the training part's statistics
    ds = load(tiny_env, val_size=30, normalize=normalize)
    # the test batch as stored: each row the R, G and B planes of one 32 x 32 image
    raw, _ = data.load_batch(fetch.read_provenance(tiny_env["A1_DATA_DIR"])["batch_dir"] + "/test_batch")
    pixels = raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    # the normalization undone for display gives the pixels back
    assert np.array_equal(data.to_images(ds.test.X, ds.mean, ds.std), pixels)


@pytest.mark.parametrize("val_size", [0, 200, -3, 2.5, "10"])
def test_val_size_out_of_range_is_refused(tiny_env, val_size):
    with pytest.raises(ValueError, match="val_size"):
        load(tiny_env, val_size=val_size)
