"""TextEncoder and the article text: unit vectors, determinism, meaning, and clear errors (no Spark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fashion_meta.features import text_encoder
from fashion_meta.features.text_encoder import (
    DEFAULT_MODEL,
    TextEncoder,
    article_text,
    get_encoder,
    resolve_model_path,
)

VEST_A = "Black jersey vest top with narrow straps"
VEST_B = "Strappy vest top in black cotton jersey"
BOOTS = "Leather ankle boots with a chunky heel"


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return get_encoder(DEFAULT_MODEL, 128, 4, None)


def test_vectors_are_unit_norm_float32(encoder):
    vectors = encoder.encode([VEST_A, VEST_B, BOOTS, "x", "Tights, 20 den. " * 60])
    assert vectors.dtype == np.float32
    assert vectors.shape == (5, encoder.dim) == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encoding_is_deterministic_and_independent_of_order_and_batching(encoder):
    texts = [VEST_A, "A much longer text about a pair of wide-leg trousers in a soft linen blend", BOOTS, "Cap"]
    first = encoder.encode(texts)
    np.testing.assert_array_equal(encoder.encode(texts), first)
    # Other neighbours in a batch (different padding) and another batch size give the same vectors.
    reversed_ = encoder.encode(texts[::-1])[::-1]
    np.testing.assert_allclose(reversed_, first, atol=1e-5)
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(one_by_one, first, atol=1e-5)


def test_descriptions_of_one_garment_are_closer_than_unrelated_ones(encoder):
    vest_a, vest_b, boots = encoder.encode([VEST_A, VEST_B, BOOTS])
    same = float(vest_a @ vest_b)
    unrelated = float(vest_a @ boots)
    assert same > unrelated + 0.2, (same, unrelated)


def test_empty_input_gives_zero_rows(encoder):
    empty = encoder.encode([])
    assert empty.shape == (0, encoder.dim)
    assert empty.dtype == np.float32


def test_get_encoder_loads_once_per_arguments(encoder):
    assert get_encoder(DEFAULT_MODEL, 128, 4, None) is encoder
    assert get_encoder(DEFAULT_MODEL, 64, 4, None) is not encoder


def test_encoding_runs_on_its_thread_count_and_restores_the_callers(encoder):
    """A Spark Python worker encodes, then may score in the same process: no thread count may be left behind."""
    import torch

    pinned = get_encoder(DEFAULT_MODEL, 128, 4, 1)
    model, seen = pinned._model, []

    class Spy:
        config = model.config

        def __call__(self, **batch):
            seen.append(torch.get_num_threads())
            return model(**batch)

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pinned._model = Spy()
        vectors = pinned.encode([VEST_A, BOOTS])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        pinned._model = model
        torch.set_num_threads(previous)
    np.testing.assert_allclose(vectors, encoder.encode([VEST_A, BOOTS]), atol=1e-6)


def test_article_text_leaves_out_missing_blank_and_null_fields():
    full = {
        "prod_name": "Strap top",
        "product_type_name": "Vest top",
        "product_group_name": "Garment Upper body",
        "colour_group_name": "Black",
        "graphical_appearance_name": "Solid",
        "perceived_colour_value_name": "Dark",
        "section_name": "Womens Everyday Basics",
        "garment_group_name": "Jersey Basic",
        "index_name": "Ladieswear",
        "detail_desc": "Jersey top with narrow shoulder straps.",
        "article_id": "0108775015",
    }
    assert article_text(full) == (
        "Strap top. Vest top, Garment Upper body, Black, Solid, Dark, Womens Everyday Basics, Jersey Basic, "
        "Ladieswear. Jersey top with narrow shoulder straps."
    )
    assert article_text({"prod_name": "Strap top", "colour_group_name": None, "index_name": "  Ladieswear\n"}) == (
        "Strap top. Ladieswear"
    )
    assert article_text({"prod_name": "Strap top", "detail_desc": " \t "}) == "Strap top"
    assert article_text({"prod_name": "Cap", "detail_desc": "Soft\n\ncap,  one size"}) == "Cap. Soft cap, one size"
    assert article_text({"detail_desc": "Only a description"}) == "Only a description"
    assert article_text({}) == ""


def test_resolve_model_path():
    packaged = Path(resolve_model_path(DEFAULT_MODEL))
    assert (packaged / "config.json").is_file()
    assert resolve_model_path(str(packaged)) == str(packaged)
    assert resolve_model_path("bert-base-uncased") == "bert-base-uncased"


def test_missing_model_path_raises_value_error_naming_it(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ValueError, match="no-such-model"):
        TextEncoder(missing)
    with pytest.raises(ValueError, match="no-such-model"):
        resolve_model_path(missing)


def test_folder_without_a_model_raises_value_error_naming_it(tmp_path):
    folder = tmp_path / "empty-model"
    folder.mkdir()
    with pytest.raises(ValueError, match="empty-model"):
        TextEncoder(str(folder))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="batch_size"):
        TextEncoder(batch_size=0)
    with pytest.raises(ValueError, match="non-empty"):
        resolve_model_path("")


@pytest.mark.gpu
def test_cuda_and_cpu_agree():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    texts = [VEST_A, VEST_B, BOOTS, "Tights, 20 den. " * 40]
    on_gpu = TextEncoder(device="cuda")
    on_cpu = TextEncoder(device="cpu")
    assert on_gpu.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.encode(texts), on_cpu.encode(texts), atol=1e-4)
    assert text_encoder.get_encoder().device.type == "cuda"
