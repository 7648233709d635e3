"""The MNIST data layer against the real files, corrupted copies and a real local HTTP server."""

from __future__ import annotations

import gzip
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
    load_keras_npz,
    load_mnist,
    make_splits,
    read_idx,
)
from mnist_models.errors import DataError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def copy_mnist(source: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for file in MNIST_FILES.values():
        shutil.copy(source / file.name, dest / file.name)
    return dest


def test_real_files_match_the_published_facts(mnist: MnistData) -> None:
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.uint8
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == TEST_COUNTS
    assert mnist.x_train.mean() == pytest.approx(33.3184, abs=1e-4)
    assert mnist.info.name == "mnist" and len(mnist.info.digest) == 16


def test_uncompressed_and_renamed_files_load_too(
    mnist_dir: Path, tmp_path: Path, mnist: MnistData
) -> None:
    for key, file in MNIST_FILES.items():
        raw = gzip.decompress((mnist_dir / file.name).read_bytes())
        name = file.name.removesuffix(".gz")
        if key == "x_train":
            name = name.replace("-idx", ".idx")  # train-images.idx3-ubyte
        (tmp_path / name).write_bytes(raw)
    loaded = load_mnist(tmp_path, dataset="mnist", download=False)
    np.testing.assert_array_equal(loaded.x_train, mnist.x_train)
    assert loaded.info.digest == mnist.info.digest


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return head + payload


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        (_idx(0x802, (2, 2, 2), bytes(8)), "images", "bad magic 0x00000802, expected 0x00000803"),
        (_idx(0x803, (2,), bytes(2)), "labels", "bad magic 0x00000803, expected 0x00000801"),
        (_idx(0x803, (2, 2, 2), bytes(7)), "images", "truncated: 23 bytes, expected 24"),
        (_idx(0x801, (3,), bytes(4)), "labels", "trailing bytes: 12 bytes, expected 11"),
        (b"\x00\x00", "labels", "too short"),
        (_idx(0x803, (2, 2), b""), "images", "truncated header"),
    ],
)
def test_bad_idx_files_name_the_file(
    tmp_path: Path, content: bytes, kind: str, expected: str
) -> None:
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_idx(path, kind)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_valid_synthetic_idx_reads(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gz"
    path.write_bytes(gzip.compress(_idx(0x803, (2, 2, 3), bytes(range(12)))))
    np.testing.assert_array_equal(read_idx(path, "images"), np.arange(12).reshape(2, 2, 3))


def test_corrupt_gzip_names_the_file(mnist_dir: Path, tmp_path: Path) -> None:
    folder = copy_mnist(mnist_dir, tmp_path / "m")
    target = folder / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: checksum mismatch"):
        load_mnist(folder, download=False)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: checksum mismatch: md5"):
        load_mnist(folder, dataset="auto", download=False)  # corruption never falls back


def test_a_flipped_byte_fails_the_checksum(mnist_dir: Path, tmp_path: Path) -> None:
    folder = copy_mnist(mnist_dir, tmp_path / "m")
    target = folder / "train-labels-idx1-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataError) as caught:
        load_mnist(folder, download=False)
    message = str(caught.value)
    assert "train-labels-idx1-ubyte.gz: checksum mismatch: sha256" in message
    assert MNIST_FILES["y_train"].sha256_gz in message


def test_missing_files_with_dataset_mnist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"full MNIST not found in .*cannot download"):
        load_mnist(tmp_path, dataset="mnist")


def test_auto_falls_back_to_the_bundled_sample_with_a_warning(tmp_path: Path) -> None:
    with pytest.warns(DatasetFallbackWarning, match="5,000-digit MNIST sample"):
        data = load_mnist(tmp_path, dataset="auto")
    assert data.info.name == "mnist-sample"
    assert (len(data.y_train), len(data.y_test)) == (4000, 1000)
    assert np.bincount(data.y_test).tolist() == [100] * 10  # stratified, 500 per digit in all
    assert data.x_train.dtype == np.uint8 and data.x_train.max() == 255
    assert load_mnist(dataset="sample").info.digest == data.info.digest


class _Handler(http.server.SimpleHTTPRequestHandler):
    mode = "ok"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.mode == "ok":
            return super().do_GET()
        body = Path(self.directory, self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.mode == "corrupt":
            self.wfile.write(body[:-10] + bytes(10))
        else:  # "drop": close the connection half-way through the file
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()


@pytest.fixture
def server(mnist_dir: Path) -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})

    def factory(*args: object, **kwargs: object) -> _Handler:
        return handler(*args, directory=str(mnist_dir), **kwargs)  # type: ignore[arg-type]

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_verifies_and_lands_in_the_cache(
    server, mnist: MnistData, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    monkeypatch.delenv("MNIST_DIR", raising=False)  # nothing local: it must download
    data = load_mnist(dataset="mnist", mirrors=["http://127.0.0.1:9/", url])  # first one fails
    assert sorted(p.name for p in cache_dir().iterdir()) == sorted(
        f.name for f in MNIST_FILES.values()
    )
    np.testing.assert_array_equal(data.y_train, mnist.y_train)
    assert data.info.source == str(cache_dir().resolve())


@pytest.mark.parametrize("mode", ["corrupt", "drop"])
def test_bad_downloads_leave_nothing_that_looks_complete(server, tmp_path: Path, mode: str) -> None:
    url, handler = server
    handler.mode = mode
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match=r"cannot download train-images-idx3-ubyte\.gz") as caught:
        download_mnist(dest, mirrors=[url])
    if mode == "corrupt":
        assert "checksum mismatch" in str(caught.value)
    assert list(dest.iterdir()) == []


def test_keras_npz_is_used_and_validated(mnist: MnistData, tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(
        path, x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test, y_test=mnist.y_test
    )
    loaded = load_keras_npz(path)
    assert loaded is not None
    np.testing.assert_array_equal(loaded.x_test, mnist.x_test)
    np.savez(
        path,
        x_train=mnist.x_train[:5],
        y_train=mnist.y_train,
        x_test=mnist.x_test,
        y_test=mnist.y_test,
    )
    with pytest.raises(DataError, match="x_train has shape"):
        load_keras_npz(path)


def test_splits_take_the_first_images_and_a_seeded_validation_share(mnist: MnistData) -> None:
    config = DataConfig(train_size=1000, val_fraction=0.1, test_size=200)
    a = make_splits(mnist, config, seed=0)
    b = make_splits(mnist, config, seed=0)
    c = make_splits(mnist, config, seed=1)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (900, 100, 200)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.y_val, c.y_val)
    # Train and validation together are exactly the first 1,000 images.
    together = np.concatenate([a.x_train, a.x_val]).reshape(1000, -1)
    first = mnist.x_train[:1000].reshape(1000, -1).astype(np.float32) / 255
    assert sorted(map(bytes, together)) == sorted(map(bytes, first))
    assert a.x_train.dtype == np.float32 and a.x_train.min() >= 0 and a.x_train.max() == 1.0
    assert a.y_train.dtype == np.int64
    np.testing.assert_array_equal(a.y_test, mnist.y_test[:200])
    assert a.digest == b.digest != c.digest
    assert make_splits(mnist, DataConfig(train_size=1001), 0).digest != a.digest
    assert make_splits(mnist, config, 0, dtype="float64").x_train.dtype == np.float64
    assert a.info.n_train == 1000 and a.info.n_test == 200


def test_no_validation_set_and_too_large_slices(mnist: MnistData) -> None:
    empty = make_splits(mnist, DataConfig(train_size=50, val_fraction=0.0), 0)
    assert empty.x_val.shape == (0, 28, 28)
    with pytest.raises(DataError, match=r"data\.train_size=70000: mnist has only 60000"):
        make_splits(mnist, DataConfig(train_size=70000), 0)


def test_a_cut_gzip_stream_names_the_file(mnist_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes((mnist_dir / path.name).read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: corrupt gzip stream"):
        read_idx(path, "labels")
