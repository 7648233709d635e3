"""The MNIST data layer against the real files, corrupted copies and a real local HTTP server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_models.config import DataConfig
from mnist_models.data import (
    MNIST_FILES,
    DatasetFallbackWarning,
    MnistData,
    cache_dir,
    download_mnist,
    keras_npz_path,
    load_keras_npz,
    load_mnist,
    load_sample,
    make_splits,
    read_idx,
)
from mnist_models.errors import ConfigError, DataError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def copy_mnist(source: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for file in MNIST_FILES.values():
        shutil.copy(source / file.name, dest / file.name)
    return dest


def one_line_error(caught: pytest.ExceptionInfo[DataError], path: Path | str) -> str:
    """The message, checked to be one line that starts with or names ``path``."""
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return head + payload


# -- real files -----------------------------------------------------------------------------


def test_real_files_match_the_published_facts(mnist: MnistData) -> None:
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_train.shape == (60000,) and mnist.y_test.shape == (10000,)
    assert mnist.x_train.dtype == np.uint8 and mnist.y_train.dtype == np.uint8
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == TEST_COUNTS
    assert mnist.x_train.mean() == pytest.approx(33.3184, abs=1e-4)
    assert mnist.x_test.mean() == pytest.approx(33.7912, abs=1e-4)
    assert mnist.info.name == "mnist" and len(mnist.info.digest) == 16
    assert (mnist.info.n_train, mnist.info.n_test) == (60000, 10000)
    assert not mnist.x_train.flags.writeable  # shared between trials: never changed in place


def test_uncompressed_and_renamed_files_load_too(
    mnist_dir: Path, tmp_path: Path, mnist: MnistData
) -> None:
    for key, file in MNIST_FILES.items():
        raw = gzip.decompress((mnist_dir / file.name).read_bytes())
        name = file.raw_name
        if key == "x_train":
            name = name.replace("-idx", ".idx")  # train-images.idx3-ubyte
        (tmp_path / name).write_bytes(raw)
    loaded = load_mnist(tmp_path, dataset="mnist", download=False)
    np.testing.assert_array_equal(loaded.x_train, mnist.x_train)
    np.testing.assert_array_equal(loaded.y_test, mnist.y_test)
    assert loaded.info.digest == mnist.info.digest


def test_gzip_compressed_again_is_accepted_by_its_content(
    mnist_dir: Path, tmp_path: Path, mnist: MnistData
) -> None:
    folder = copy_mnist(mnist_dir, tmp_path / "m")
    target = folder / MNIST_FILES["y_train"].name
    target.write_bytes(gzip.compress(gzip.decompress(target.read_bytes()), compresslevel=1))
    loaded = load_mnist(folder, dataset="mnist", download=False)
    np.testing.assert_array_equal(loaded.y_train, mnist.y_train)
    assert loaded.info.digest == mnist.info.digest


def test_mnist_dir_env_is_used(
    mnist_dir: Path, mnist: MnistData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    loaded = load_mnist(dataset="mnist", download=False)
    assert loaded.info.source == str(mnist_dir.resolve())
    np.testing.assert_array_equal(loaded.y_train, mnist.y_train)


# -- IDX parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        (_idx(0x802, (2, 2, 2), bytes(8)), "images", "bad magic 0x00000802, expected 0x00000803"),
        (_idx(0x803, (2,), bytes(2)), "labels", "bad magic 0x00000803, expected 0x00000801"),
        (_idx(0x803, (2, 2, 2), bytes(7)), "images", "truncated: got 23 bytes, expected 24"),
        (_idx(0x801, (3,), bytes(4)), "labels", "trailing bytes: got 12 bytes, expected 11"),
        (b"\x00\x00", "labels", "too short"),
        (_idx(0x803, (2, 2), b""), "images", "truncated header"),
        (_idx(0x0D03, (1, 1, 1), bytes(4)), None, "expected 0x000008NN (IDX ubyte)"),
        (_idx(0x803, (0xFFFFFFFF,) * 3, b""), "images", "truncated: got 16 bytes"),
    ],
)
@pytest.mark.fault
def test_bad_idx_files_name_the_file(
    tmp_path: Path, content: bytes, kind: str | None, expected: str
) -> None:
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_idx(path, kind)
    assert one_line_error(caught, path).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_gzip_is_detected_by_its_magic_bytes_not_its_name(tmp_path: Path) -> None:
    content = _idx(0x803, (2, 2, 3), bytes(range(12)))
    zipped, plain = tmp_path / "zipped-without-suffix", tmp_path / "plain.gz"
    zipped.write_bytes(gzip.compress(content))
    plain.write_bytes(content)
    for path in (zipped, plain):
        array = read_idx(path, "images")
        np.testing.assert_array_equal(array, np.arange(12).reshape(2, 2, 3))
        assert array.dtype == np.uint8


def test_generic_ubyte_idx_reads_any_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "matrix.idx2-ubyte"
    path.write_bytes(_idx(0x802, (3, 4), bytes(range(12))))
    np.testing.assert_array_equal(read_idx(path), np.arange(12).reshape(3, 4))


@pytest.mark.fault
def test_a_cut_gzip_stream_names_the_file(mnist_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes((mnist_dir / path.name).read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: corrupt gzip stream") as c:
        read_idx(path, "labels")
    one_line_error(c, path)


@pytest.mark.fault
def test_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found") as caught:
        read_idx(tmp_path / "nope.gz")
    one_line_error(caught, tmp_path / "nope.gz")


# -- corruption and absence -----------------------------------------------------------------


@pytest.mark.fault
def test_corrupt_files_raise_and_never_fall_back(mnist_dir: Path, tmp_path: Path) -> None:
    folder = copy_mnist(mnist_dir, tmp_path / "m")
    target = folder / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: checksum mismatch") as c:
        load_mnist(folder, download=False)
    one_line_error(c, target)
    target.unlink()
    raw = folder / "t10k-labels-idx1-ubyte"
    raw.write_bytes(_idx(0x801, (3,), bytes(3)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: checksum mismatch: md5") as c:
        load_mnist(folder, dataset="auto", download=False)  # corruption never falls back
    one_line_error(c, raw)


@pytest.mark.fault
def test_a_flipped_byte_fails_the_checksum(mnist_dir: Path, tmp_path: Path) -> None:
    folder = copy_mnist(mnist_dir, tmp_path / "m")
    target = folder / "train-labels-idx1-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataError) as caught:
        load_mnist(folder, download=False)
    message = one_line_error(caught, target)
    assert "train-labels-idx1-ubyte.gz: checksum mismatch: sha256" in message
    assert f"expected {MNIST_FILES['y_train'].sha256_gz}" in message


@pytest.mark.fault
@pytest.mark.parametrize("stored", ["gzip", "raw"])
def test_changed_pixels_in_a_well_formed_file_fail_the_checksum(
    mnist_dir: Path, tmp_path: Path, mnist: MnistData, stored: str
) -> None:
    # Valid gzip, valid IDX header, right shape: only the checksum of the content can tell.
    folder = copy_mnist(mnist_dir, tmp_path / "m")
    gz = folder / MNIST_FILES["x_train"].name
    original = gzip.decompress(gz.read_bytes())
    content = bytearray(original)
    for pixel in (14 * 28 + 14, 59999 * 784 + 400):  # one in the first image, one in the last
        content[16 + pixel] ^= 0x01
    target = gz if stored == "gzip" else folder / MNIST_FILES["x_train"].raw_name
    if stored == "raw":
        gz.unlink()
    target.write_bytes(gzip.compress(bytes(content), 1, mtime=0) if stored == "gzip" else content)
    assert read_idx(target, "images").shape == (60000, 28, 28)  # the structure is intact
    with pytest.raises(DataError) as caught:
        load_mnist(folder, dataset="mnist", download=False)
    assert one_line_error(caught, target).startswith(f"{target}: checksum mismatch")
    # The same file written back unchanged (gzipped anew, or raw) is accepted.
    target.write_bytes(gzip.compress(original, 1, mtime=0) if stored == "gzip" else original)
    np.testing.assert_array_equal(
        load_mnist(folder, dataset="mnist", download=False).x_train, mnist.x_train
    )


@pytest.mark.fault
def test_a_corrupt_cache_is_an_error_even_for_auto(mnist_dir: Path) -> None:
    cache = copy_mnist(mnist_dir, cache_dir())
    (cache / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: checksum mismatch"):
        load_mnist(dataset="auto")


@pytest.mark.fault
def test_missing_files_with_dataset_mnist_is_an_error(mnist_dir: Path, tmp_path: Path) -> None:
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(DataError) as caught:
        load_mnist(tmp_path, dataset="mnist")
    message = one_line_error(caught, tmp_path)
    assert message.startswith("full MNIST not found")
    assert "missing train-images-idx3-ubyte.gz" in message
    assert str(cache_dir()) in message and str(keras_npz_path()) in message
    assert "cannot download train-images-idx3-ubyte.gz" in message and "127.0.0.1:9" in message


def test_an_unknown_dataset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="dataset='fashion'"):
        load_mnist(dataset="fashion")


# -- the sample fallback --------------------------------------------------------------------


def test_auto_falls_back_to_the_bundled_sample_with_a_warning(tmp_path: Path) -> None:
    with pytest.warns(DatasetFallbackWarning, match="5,000-digit MNIST sample") as record:
        data = load_mnist(tmp_path, dataset="auto")
    (warning,) = record
    assert "\n" not in str(warning.message) and str(tmp_path) in str(warning.message)
    assert data.info.name == "mnist-sample"
    assert (len(data.y_train), len(data.y_test)) == (4000, 1000)
    assert (data.info.n_train, data.info.n_test) == (4000, 1000)
    # Real digits, stratified: 400 train and 100 test per digit.
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.x_train.shape == (4000, 28, 28) and data.x_train.dtype == np.uint8
    assert data.x_train.max() == 255 and 20 < data.x_train.mean() < 50
    assert data.y_train[:20].tolist() != sorted(data.y_train[:20].tolist())  # shuffled
    assert load_mnist(dataset="sample").info.digest == data.info.digest
    assert len(data.info.digest) == 16


def test_sample_is_loaded_once_and_read_only() -> None:
    assert load_sample() is load_sample()
    assert not load_sample().x_train.flags.writeable


def test_download_off_is_reported() -> None:
    with pytest.raises(DataError, match="downloading is off"):
        load_mnist(dataset="mnist", download=False)


# -- downloads from a real local server -----------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    mode = "ok"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.mode == "ok":
            return super().do_GET()
        body = Path(self.directory, self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        if self.mode != "drop-no-length":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.mode == "corrupt":
            self.wfile.write(body[:-10] + bytes(10))
        else:  # "drop*": close the connection half-way through the file
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.close()


@pytest.fixture
def server(mnist_dir: Path) -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    factory = functools.partial(handler, directory=str(mnist_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_verifies_and_lands_in_the_cache(
    server: tuple[str, type[_Handler]],
    mnist: MnistData,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url, _ = server
    monkeypatch.delenv("MNIST_DIR", raising=False)  # nothing local: it must download
    data = load_mnist(dataset="mnist", mirrors=["http://127.0.0.1:9/", url])  # first one fails
    landed = sorted(cache_dir().iterdir())
    assert [p.name for p in landed] == sorted(f.name for f in MNIST_FILES.values())
    for path in landed:
        (file,) = [f for f in MNIST_FILES.values() if f.name == path.name]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == file.sha256_gz
    np.testing.assert_array_equal(data.y_train, mnist.y_train)
    np.testing.assert_array_equal(data.x_test, mnist.x_test)
    assert data.info.source == str(cache_dir().resolve())
    assert data.info.digest == mnist.info.digest
    assert capfd.readouterr().out == ""  # the progress bar never goes to stdout


def test_download_uses_mnist_mirrors_env_and_keeps_verified_files(
    server: tuple[str, type[_Handler]],
    mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, handler = server
    monkeypatch.setenv("MNIST_MIRRORS", f"not a url, {url}")
    dest = tmp_path / "fresh"
    download_mnist(dest)
    for file in MNIST_FILES.values():
        assert (dest / file.name).read_bytes() == (mnist_dir / file.name).read_bytes()
    handler.mode = "corrupt"  # the files are already there and verified: nothing is fetched
    download_mnist(dest)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("corrupt", "checksum mismatch: sha256"),
        ("drop", "connection closed after 4956211 of 9912422 bytes"),
        ("drop-no-length", "checksum mismatch: sha256"),
    ],
)
@pytest.mark.fault
def test_bad_downloads_leave_nothing_that_looks_complete(
    server: tuple[str, type[_Handler]], tmp_path: Path, mode: str, reason: str
) -> None:
    url, handler = server
    handler.mode = mode
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match=r"cannot download train-images-idx3-ubyte\.gz") as c:
        download_mnist(dest, mirrors=[url])
    message = one_line_error(c, url)
    assert reason in message
    assert list(dest.iterdir()) == []  # neither a file nor a temp file


@pytest.mark.fault
def test_every_mirror_tried_is_listed(tmp_path: Path) -> None:
    mirrors = ["http://127.0.0.1:9/", "nonsense-scheme://x/"]
    with pytest.raises(DataError) as caught:
        download_mnist(tmp_path, mirrors=mirrors, timeout=2)
    message = one_line_error(caught, "http://127.0.0.1:9/train-images-idx3-ubyte.gz")
    assert "nonsense-scheme://x/train-images-idx3-ubyte.gz" in message
    assert list(tmp_path.iterdir()) == []


# -- Keras npz ------------------------------------------------------------------------------


def _save_npz(path: Path, mnist: MnistData, **changes: np.ndarray) -> None:
    arrays = {k: getattr(mnist, k) for k in MNIST_FILES} | changes
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def test_keras_npz_is_found_through_keras_home(mnist: MnistData) -> None:
    _save_npz(keras_npz_path(), mnist)
    loaded = load_mnist(dataset="mnist", download=False)
    assert loaded.info.source == str(keras_npz_path().resolve())
    assert loaded.info.digest == mnist.info.digest
    np.testing.assert_array_equal(loaded.x_test, mnist.x_test)
    assert not loaded.x_train.flags.writeable


@pytest.mark.fault
def test_keras_npz_is_validated(mnist: MnistData, tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    assert load_keras_npz(path) is None
    _save_npz(path, mnist, x_train=mnist.x_train[:5])
    with pytest.raises(DataError, match="x_train has shape") as caught:
        load_keras_npz(path)
    one_line_error(caught, path)
    _save_npz(path, mnist, y_test=mnist.y_test.astype(np.int64))
    with pytest.raises(DataError, match=r"y_test has shape .* int64, expected"):
        load_keras_npz(path)
    changed = mnist.x_test.copy()
    changed[0, 14, 14] ^= 1
    _save_npz(path, mnist, x_test=changed)
    with pytest.raises(DataError, match="x_test is not the original t10k-images-idx3-ubyte"):
        load_keras_npz(path)
    np.savez(path, x_train=mnist.x_train)
    with pytest.raises(DataError, match=r"missing arrays \['y_train', 'x_test', 'y_test'\]"):
        load_keras_npz(path)
    with path.open("wb") as handle:
        np.save(handle, mnist.y_test)
    with pytest.raises(DataError, match=r"a single array, expected an \.npz archive"):
        load_keras_npz(path)
    path.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load_keras_npz(path)


# -- splits ---------------------------------------------------------------------------------


def test_splits_take_the_first_images_and_a_seeded_validation_share(mnist: MnistData) -> None:
    config = DataConfig(train_size=1000, val_fraction=0.1, test_size=200)
    a = make_splits(mnist, config, seed=0)
    b = make_splits(mnist, config, seed=0)
    c = make_splits(mnist, config, seed=1)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (900, 100, 200)
    assert a.x_train.shape == (900, 28, 28) and a.x_val.shape == (100, 28, 28)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_val, c.x_val)
    # Train and validation are disjoint and together exactly the first 1,000 images.
    first = mnist.x_train[:1000].reshape(1000, -1)
    index = {bytes(row): i for i, row in enumerate(first)}
    assert len(index) == 1000  # no duplicate images among the first 1,000
    to_raw = lambda x: np.rint(x * 255).astype(np.uint8).reshape(len(x), -1)  # noqa: E731
    train_ids = {index[bytes(row)] for row in to_raw(a.x_train)}
    val_ids = {index[bytes(row)] for row in to_raw(a.x_val)}
    assert not train_ids & val_ids and train_ids | val_ids == set(range(1000))
    np.testing.assert_array_equal(a.y_val, mnist.y_train[sorted(val_ids)])
    assert a.x_train.dtype == np.float32 and a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    assert a.y_train.dtype == np.int64 and a.y_val.dtype == np.int64
    np.testing.assert_array_equal(a.y_test, mnist.y_test[:200])
    np.testing.assert_array_equal(a.x_test, mnist.x_test[:200].astype(np.float32) / 255)
    assert a.digest == b.digest != c.digest and len(a.digest) == 16
    assert make_splits(mnist, DataConfig(train_size=1001), 0).digest != a.digest
    assert make_splits(mnist, DataConfig(train_size=1000, test_size=201), 0).digest != a.digest
    f64 = make_splits(mnist, config, 0, dtype="float64")
    assert f64.x_train.dtype == np.float64 and f64.digest == a.digest
    np.testing.assert_array_equal(f64.x_val, mnist.x_train[sorted(val_ids)] / 255.0)
    assert (a.info.n_train, a.info.n_test, a.info.name) == (1000, 200, "mnist")


def test_a_small_slice_is_the_same_images_whatever_the_seed(mnist: MnistData) -> None:
    config = DataConfig(train_size=300, val_fraction=0.0, test_size=10)
    for seed in (0, 7):
        splits = make_splits(mnist, config, seed)
        np.testing.assert_array_equal(splits.y_train, mnist.y_train[:300])


def test_no_validation_set_and_too_large_slices(mnist: MnistData) -> None:
    empty = make_splits(mnist, DataConfig(train_size=50, val_fraction=0.0), 0)
    assert empty.x_val.shape == (0, 28, 28) and empty.y_val.shape == (0,)
    assert empty.x_val.dtype == np.float32
    assert len(empty.y_test) == 10000
    with pytest.raises(DataError, match=r"data\.train_size=70000: mnist has only 60000"):
        make_splits(mnist, DataConfig(train_size=70000), 0)
    with pytest.raises(DataError, match=r"data\.test_size=10001: mnist has only 10000"):
        make_splits(mnist, DataConfig(test_size=10001), 0)
    with pytest.raises(ConfigError, match="dtype='float16'"):
        make_splits(mnist, DataConfig(train_size=50), 0, dtype="float16")


def test_sklearn_validation_split_matches_train_test_split(mnist: MnistData) -> None:
    from sklearn.model_selection import train_test_split

    config = DataConfig(train_size=420, val_fraction=0.1, val_split="sklearn", split_seed=2)
    splits = make_splits(mnist, config, seed=7)
    _, expected_val = train_test_split(np.arange(420), test_size=0.1, random_state=2)
    np.testing.assert_array_equal(splits.y_val, mnist.y_train[np.sort(expected_val)])
    assert len(splits.y_train) == 378 and len(splits.y_val) == 42
    # The split seed, not the training seed, decides the draw.
    again = make_splits(mnist, config, seed=8)
    np.testing.assert_array_equal(again.x_val, splits.x_val)
    seeded = make_splits(mnist, DataConfig(train_size=420, val_fraction=0.1), seed=2)
    assert not np.array_equal(seeded.y_val, splits.y_val) or not np.array_equal(
        seeded.x_val, splits.x_val
    )
    with pytest.raises(ConfigError, match="val_split"):
        DataConfig(val_split="random")
