"""Fusion: the weighted-cosine identity, the article's failure, and clear errors."""
import numpy as np
import pytest

from course_lib.fuse import article_fusion, fuse, fuse_by_projection, fuse_text_image, l2_normalize, pca_project


@pytest.fixture()
def blocks():
    rng = np.random.default_rng(0)
    return rng.normal(size=(30, 384)), rng.normal(size=(30, 1280))


def cos(a):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return a @ a.T


@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.9, 0.1), (3.0, 1.0), (1.0, 0.0), (0.0, 2.0)])
def test_fused_cosine_is_the_weighted_mean_of_cosines(blocks, alpha, beta):
    text, image = blocks
    f = fuse_text_image(text, image, alpha, beta)
    expected = (alpha * cos(text) + beta * cos(image)) / (alpha + beta)
    np.testing.assert_allclose(f @ f.T, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)


def test_zero_weight_drops_the_block(blocks):
    text, image = blocks
    assert fuse_text_image(text, image, 1.0, 0.0).shape == (30, 384)
    assert fuse({"a": text, "b": image, "c": text}, {"a": 1, "b": 1, "c": 2}).shape == (30, 384 + 1280 + 384)


def test_article_fusion_fails_on_different_sizes(blocks):
    text, image = blocks
    with pytest.raises(ValueError, match="broadcast"):
        article_fusion(text, image, 0.5, 0.5)


def test_article_fusion_on_equal_sizes_is_not_a_weighted_cosine():
    rng = np.random.default_rng(1)
    # the only shapes the snippet accepts: both 2*768 wide (here 2*8); it then adds, and splits the sum in halves
    text, image = rng.normal(size=(20, 16)), rng.normal(size=(20, 16))
    bad = article_fusion(text, image, 0.7, 0.3, text_dim=8)
    assert bad.shape == (20, 8)
    good = fuse_text_image(text, image, 0.7, 0.3)
    expected = 0.7 * cos(text) + 0.3 * cos(image)
    assert np.abs(cos(bad) - expected).max() > 0.1
    np.testing.assert_allclose(good @ good.T, expected, atol=1e-5)


@pytest.mark.parametrize("kwargs,msg", [
    ({"alpha": 0.0, "beta": 0.0}, r"alpha \+ beta > 0, got alpha=0.0, beta=0.0"),
    ({"alpha": -0.1, "beta": 1.0}, r">= 0"),
])
def test_bad_weights(blocks, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        fuse_text_image(*blocks, **kwargs)


def test_nan_zero_rows_and_mismatched_rows(blocks):
    text, image = blocks
    t = text.copy()
    t[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"text has NaN or infinite values in row\(s\) \[3\]"):
        fuse_text_image(t, image)
    t = text.copy()
    t[5] = 0
    with pytest.raises(ValueError, match=r"text has all-zero row\(s\) \[5\]"):
        fuse_text_image(t, image)
    with pytest.raises(ValueError, match="different numbers of rows"):
        fuse_text_image(text, image[:10])
    with pytest.raises(ValueError, match="same blocks"):
        fuse({"text": text}, {"image": 1.0})
    with pytest.raises(ValueError, match="2-D"):
        l2_normalize(np.ones(3))


def test_pca_projection_agrees_with_sklearn_and_is_unit_length(blocks):
    from sklearn.decomposition import PCA

    text, _ = blocks
    z = pca_project(text, 8)
    ref = PCA(8, random_state=0).fit_transform(text)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs((z * ref).sum(1)), 1, atol=1e-4)  # same directions up to sign
    f = fuse_by_projection(*blocks, alpha=0.3, dim=8)
    assert f.shape == (30, 8) and np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="dim must be between 1 and"):
        pca_project(text, 500)
