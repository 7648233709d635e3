"""The CNN's elastic distortion layer against scipy: identity outside training, the same
smoothing and bilinear resampling as ``scipy.ndimage``, fields of the right spread, seeded, a
model that saves and reloads, and ``with_augmentation`` fronting each ``augment`` choice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from scipy import ndimage

if TYPE_CHECKING:
    from keras import Model

keras = pytest.importorskip("keras")

from mnist_models.choices import AUGMENTS, Augment  # noqa: E402
from mnist_models.cnn.augment import RandomAffine, RandomElastic, with_augmentation  # noqa: E402
from mnist_models.config import AugmentationConfig, TrainConfig  # noqa: E402
from mnist_models.mlp.augment import elastic_displacements  # noqa: E402
from mnist_models.smoothing import gaussian_matrix  # noqa: E402

ALPHA, SIGMA = 34.0, 4.0  # Simard et al.'s values for MNIST, the config's defaults


def numpy(tensor: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def tiny_net() -> Model:
    """A net with the CNN's input shape, cheap to build, compile and save."""
    return keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)], name="tiny"
    )


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)


@pytest.mark.backend
def test_identity_outside_training_and_without_displacement(images: np.ndarray) -> None:
    layer = RandomElastic(ALPHA, SIGMA, seed=0)
    np.testing.assert_array_equal(numpy(layer(images, training=False)), images)
    np.testing.assert_array_equal(numpy(layer(images)), images)
    warped = numpy(layer(images, training=True))
    assert warped.shape == images.shape and warped.dtype == images.dtype
    assert not np.allclose(warped, images)
    still = RandomElastic(0.0, SIGMA, seed=0)
    np.testing.assert_array_equal(numpy(still(images, training=True)), images)


@pytest.mark.backend
def test_warp_is_scipys_bilinear_map_coordinates_with_zero_outside() -> None:
    # Not square and two channels, so that rows, columns and channels cannot be mixed up;
    # displacements of several pixels reach well outside the image on every side.
    rng = np.random.default_rng(1)
    images = rng.random((3, 20, 28, 2), dtype=np.float32)
    fields = rng.normal(0.0, 4.0, (3, 2, 20, 28)).astype(np.float32)
    fields[0, 0, :2] = -40.0  # far above the image: reads only the zero fill
    warped = numpy(RandomElastic(ALPHA, SIGMA).warp(images, fields))
    grid = np.mgrid[:20, :28].astype(np.float64)
    for i in range(3):
        for channel in range(2):
            expected = ndimage.map_coordinates(
                images[i, ..., channel].astype(np.float64),
                grid + fields[i],
                order=1,
                mode="grid-constant",
            )
            np.testing.assert_allclose(warped[i, ..., channel], expected, atol=1e-5)
    assert not warped[0, :2].any()


@pytest.mark.backend
def test_smoothing_is_scipys_constant_gaussian_filter() -> None:
    noise = np.random.default_rng(2).uniform(-1, 1, (2, 2, 20, 28)).astype(np.float32)
    smooth = numpy(RandomElastic(ALPHA, SIGMA).smooth(noise))
    for index in np.ndindex(noise.shape[:2]):
        expected = ndimage.gaussian_filter(noise[index].astype(np.float64), SIGMA, mode="constant")
        np.testing.assert_allclose(smooth[index], expected, atol=1e-6)


def expected_rms(alpha: float, sigma: float, size: int) -> float:
    """Root mean square of ``alpha * G @ U @ G.T`` over a field, U ~ U(-1, 1) (variance 1/3):
    pixel (i, j) has variance ``alpha**2 / 3 * a_i * a_j`` with ``a_i = sum_k G[i, k]**2``."""
    a = (gaussian_matrix(size, sigma) ** 2).sum(axis=1)
    return alpha * math.sqrt(1 / 3) * float(a.mean())


@pytest.mark.backend
def test_fields_have_the_expected_spread_differ_per_image_and_follow_the_seed() -> None:
    fields = numpy(RandomElastic(ALPHA, SIGMA, seed=3).fields(256, 28, 28))
    assert fields.shape == (256, 2, 28, 28)
    # About 1.27 pixels for alpha = 34, sigma = 4; the RMS over 256 fields varies by ~1 %.
    rms = float(np.sqrt(np.mean(fields.astype(np.float64) ** 2)))
    assert rms == pytest.approx(expected_rms(ALPHA, SIGMA, 28), rel=0.06)
    assert abs(float(fields.mean())) < 0.05
    # Each image its own field: no two alike, nor even much correlated.
    flat = fields.reshape(256, -1)
    assert len(np.unique(flat, axis=0)) == 256
    correlations = np.corrcoef(flat)[~np.eye(256, dtype=bool)]
    assert np.abs(correlations).max() < 0.95
    again = numpy(RandomElastic(ALPHA, SIGMA, seed=3).fields(256, 28, 28))
    np.testing.assert_array_equal(again, fields)
    other = numpy(RandomElastic(ALPHA, SIGMA, seed=4).fields(256, 28, 28))
    assert not np.allclose(other, fields)


def test_numpy_reference_has_the_same_spread() -> None:
    # The formula above also describes the MLP's fields, so both draw the same distortion.
    config = AugmentationConfig(alpha=ALPHA, sigma=SIGMA)
    fields = elastic_displacements(256, 28, config, np.random.default_rng(0), np.float64)
    rms = float(np.sqrt(np.mean(fields**2)))
    assert rms == pytest.approx(expected_rms(ALPHA, SIGMA, 28), rel=0.06)


@pytest.mark.backend
def test_each_training_call_draws_new_fields(images: np.ndarray) -> None:
    layer = RandomElastic(ALPHA, SIGMA, seed=5)
    first, second = (numpy(layer(images, training=True)) for _ in range(2))
    assert not np.allclose(first, second)
    replay = RandomElastic(ALPHA, SIGMA, seed=5)
    np.testing.assert_array_equal(numpy(replay(images, training=True)), first)


@pytest.mark.parametrize(
    ("alpha", "sigma", "bad"),
    [(-1.0, SIGMA, "alpha="), (math.inf, SIGMA, "alpha="), (ALPHA, 0.0, "sigma=")],
)
def test_rejects_bad_arguments(alpha: float, sigma: float, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        RandomElastic(alpha, sigma)


@pytest.mark.backend
def test_augmented_model_trains_saves_and_reloads(images: np.ndarray, tmp_path: Path) -> None:
    config = TrainConfig(model="cnn", augment="affine+elastic", seed=9)
    model = with_augmentation(tiny_net(), config)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    # Compiled training steps: traced, the seed state carried from one step to the next.
    labels = np.arange(len(images)) % 10
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    path = tmp_path / "augmented.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    fronts = [layer for layer in reloaded.layers if isinstance(layer, RandomElastic)]
    assert [layer.get_config() for layer in fronts] == [model.layers[1].get_config()]
    np.testing.assert_array_equal(
        numpy(reloaded.predict(images, verbose=0)), numpy(model.predict(images, verbose=0))
    )


def test_config_round_trips() -> None:
    layer = RandomElastic(12.5, 3.0, seed=7, name="elastic")
    again = RandomElastic.from_config(layer.get_config())
    assert (again.alpha, again.sigma, again.seed, again.name) == (12.5, 3.0, 7, "elastic")
    assert again.get_config() == layer.get_config()


@pytest.mark.parametrize("augment", AUGMENTS)
def test_with_augmentation_fronts_what_augment_asks_for(augment: Augment) -> None:
    aug = AugmentationConfig(rotation=5.0, zoom=0.2, shift=0.05, alpha=20.0, sigma=3.0)
    config = TrainConfig(model="cnn", augment=augment, seed=11, augmentation=aug)
    net = tiny_net()
    if augment == "none":
        with pytest.raises(ValueError, match="augment"):
            with_augmentation(net, config)
        return
    model = with_augmentation(net, config)
    *front, last = model.layers
    assert last is net
    expected = [kind for kind in ("affine", "elastic") if kind in augment.split("+")]
    kinds = {RandomAffine: "affine", RandomElastic: "elastic"}
    assert [kinds[type(layer)] for layer in front] == expected
    for layer in front:
        if isinstance(layer, RandomAffine):
            assert (layer.rotation, layer.zoom, layer.shift, layer.seed) == (5.0, 0.2, 0.05, 11)
        else:
            assert (layer.alpha, layer.sigma, layer.seed) == (20.0, 3.0, 12)
