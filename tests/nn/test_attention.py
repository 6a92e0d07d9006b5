"""Attention, MultiHeadAttention, positional encodings and TransformerBlock.

Gradients are checked against finite differences in float64; values against plain
per-head loops written from the formulas (the Keras / "Attention Is All You Need"
definitions), independent of the batched implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.base import backward_without_input_grad
from tradenn.nn.reference import attention_forward as reference_attention
from tradenn.nn.reference import multi_head_attention_forward

from .support import WithOptions

TOLERANCE = 1e-6


def check_gradients(module, x, **kwargs) -> dict[str, float]:
    """gradcheck every tensor (< 1e-6), except that a key bias is checked to be zero.

    q . (k + b_k) = q . k + q . b_k adds the same number to every score of a query's row,
    and softmax ignores that, so dL/d key_bias is exactly 0; finite differences return
    rounding noise for it, whose relative error against 0 is meaningless.
    """
    errors = nn.gradcheck(module, x, return_errors=True, **kwargs)
    for name, error in errors.items():
        if not name.endswith("/key_bias"):
            assert error < TOLERANCE, (name, error)
    for layer in nn.walk(module):
        if "key_bias" in getattr(layer, "grads", {}):
            assert np.abs(layer.grads["key_bias"]).max() < 1e-10
    return errors


def reference_mha(layer, query, value=None, key=None, mask=None, causal=False):
    """Keras' MultiHeadAttention written with explicit loops over samples and heads."""
    value = query if value is None else value
    key = value if key is None else key
    params = {name: array.astype(np.float64) for name, array in layer.params.items()}
    return multi_head_attention_forward(
        query, value, key, **params, attention_mask=mask, causal=causal
    )


# --------------------------------------------------------------------------- MultiHeadAttention


def test_multi_head_attention_parameters_follow_the_keras_3_layout():
    layer = nn.MultiHeadAttention(num_heads=4, key_dim=8, value_dim=6, output_shape=10)
    layer.forward(np.zeros((2, 5, 12)), np.zeros((2, 7, 3)), np.zeros((2, 7, 9)))
    shapes = {name: array.shape for name, array in layer.params.items()}
    assert shapes == {
        "query_kernel": (12, 4, 8),
        "query_bias": (4, 8),
        "key_kernel": (9, 4, 8),
        "key_bias": (4, 8),
        "value_kernel": (3, 4, 6),
        "value_bias": (4, 6),
        "output_kernel": (4, 6, 10),
        "output_bias": (10,),
    }
    assert all(array.dtype == np.float32 for array in layer.params.values())


def test_multi_head_self_attention_matches_a_per_head_loop(rng, float64):
    layer = nn.MultiHeadAttention(3, 4)
    x = rng.standard_normal((2, 5, 6))
    layer.build(x.shape)
    layer.params["query_bias"][:] = rng.standard_normal((3, 4))
    layer.params["output_bias"][:] = rng.standard_normal(6)
    y, weights = layer.forward(x, return_attention_scores=True)
    expected, expected_weights = reference_mha(layer, x)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-12, atol=1e-14)


def test_multi_head_cross_attention_with_masks_matches_a_per_head_loop(rng, float64):
    layer = nn.MultiHeadAttention(2, 3, value_dim=5, output_shape=4)
    query, value, key = (rng.standard_normal(s) for s in ((2, 4, 6), (2, 5, 3), (2, 5, 7)))
    mask = rng.random((2, 4, 5)) < 0.7
    y = layer.forward(query, value, key, attention_mask=mask, use_causal_mask=True)
    expected, _ = reference_mha(layer, query, value, key, mask=mask, causal=True)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_multi_head_attention_without_bias_matches_a_per_head_loop(rng, float64):
    layer = nn.MultiHeadAttention(2, 3, use_bias=False)
    x = rng.standard_normal((2, 4, 5))
    y = layer.forward(x, use_causal_mask=True)
    assert "query_bias" not in layer.params and "output_bias" not in layer.params
    np.testing.assert_allclose(y, reference_mha(layer, x, causal=True)[0], rtol=1e-12, atol=1e-12)


def test_masked_positions_get_exactly_zero_weight(rng):
    layer = nn.MultiHeadAttention(2, 4)
    x = rng.standard_normal((3, 6, 8)).astype(np.float32)
    mask = rng.random((3, 6, 6)) < 0.5
    mask[:, :, 0] = True
    _, weights = layer.forward(x, attention_mask=mask, return_attention_scores=True)
    assert np.all(weights[np.broadcast_to(~mask[:, None], weights.shape)] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)
    _, causal = layer.forward(x, use_causal_mask=True, return_attention_scores=True)
    upper = np.triu(np.ones((6, 6), dtype=bool), 1)
    assert np.all(causal[..., upper] == 0.0) and np.all(causal[..., ~upper] > 0.0)


def test_a_fully_masked_query_row_gets_zero_weights_and_outputs_the_bias(rng):
    layer = nn.MultiHeadAttention(2, 4)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    layer.build(x.shape)
    layer.params["output_bias"][:] = rng.standard_normal(8)
    mask = np.ones((2, 5, 5), dtype=bool)
    mask[1, 3] = False  # query 3 of sample 1 may see nothing
    y, weights = layer.forward(x, attention_mask=mask, return_attention_scores=True)
    assert np.all(np.isfinite(y)) and np.all(weights[1, :, 3] == 0.0)
    np.testing.assert_array_equal(y[1, 3], layer.params["output_bias"])
    dx = layer.backward(np.ones_like(y))
    assert np.all(np.isfinite(dx))


def padding_masks(rng, batch, length):
    """Random (N, T) padding masks, one sample fully padded, every other with a real token."""
    mask = rng.random((batch, length)) < 0.6
    mask[:-1, 0] = True
    mask[-1] = False
    return mask


def test_query_value_and_key_masks_combine_as_in_keras_3(rng, float64):
    layer = nn.MultiHeadAttention(2, 3, value_dim=4, output_shape=5)
    query, value, key = (rng.standard_normal(s) for s in ((3, 4, 6), (3, 5, 3), (3, 5, 7)))
    query_mask = padding_masks(rng, 3, 4)
    value_mask, key_mask = rng.random((3, 5)) < 0.7, rng.random((3, 5)) < 0.8
    y = layer.forward(
        query, value, key, query_mask=query_mask, value_mask=value_mask, key_mask=key_mask
    )
    allowed = query_mask[:, :, None] & value_mask[:, None, :] & key_mask[:, None, :]
    expected, _ = reference_mha(layer, query, value, key, mask=allowed)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_padding_masks_and_with_the_attention_mask_and_the_causal_mask(rng, float64):
    layer = nn.MultiHeadAttention(2, 3)
    x = rng.standard_normal((3, 5, 4))
    mask, attention_mask = padding_masks(rng, 3, 5), rng.random((3, 5, 5)) < 0.8
    y = layer.forward(
        x, attention_mask=attention_mask, use_causal_mask=True, query_mask=mask, value_mask=mask
    )
    allowed = attention_mask & mask[:, :, None] & mask[:, None, :]
    expected, _ = reference_mha(layer, x, mask=allowed, causal=True)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_a_fully_padded_sequence_gives_finite_outputs_and_gradients(rng):
    layer = nn.MultiHeadAttention(2, 4)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    layer.build(x.shape)
    layer.params["output_bias"][:] = rng.standard_normal(8)
    mask = np.array([[True, True, True, False, False], [False] * 5])
    y, weights = layer.forward(x, query_mask=mask, value_mask=mask, return_attention_scores=True)
    assert np.all(weights[1] == 0.0) and np.all(weights[0][..., 3:] == 0.0)
    np.testing.assert_array_equal(y[1], np.broadcast_to(layer.params["output_bias"], (5, 8)))
    dx = layer.backward(np.ones_like(y))
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(layer.grads["query_kernel"]))


def test_self_attention_backward_with_padding_masks(rng, float64):
    layer = nn.MultiHeadAttention(2, 3)
    x = rng.standard_normal((3, 5, 4))
    mask = padding_masks(rng, 3, 5)
    check_gradients(WithOptions(layer, query_mask=mask, value_mask=mask), x)


def test_cross_attention_backward_with_value_and_key_masks(rng, float64):
    layer = nn.MultiHeadAttention(2, 3)
    query, value, key = (rng.standard_normal(s) for s in ((2, 4, 6), (2, 5, 3), (2, 5, 7)))
    value_mask = np.array([[True, True, False, True, False], [True, False, False, False, False]])
    key_mask = np.array([[True, True, True, True, False], [True, True, True, False, False]])
    check_gradients(
        WithOptions(layer, value_mask=value_mask, key_mask=key_mask), (query, value, key)
    )


def test_padding_masks_of_the_wrong_shape_are_rejected(rng):
    layer = nn.MultiHeadAttention(2, 3)
    with pytest.raises(ValueError, match=r"value_mask of shape \(2, 4\) does not fit"):
        layer.forward(rng.standard_normal((2, 5, 4)), value_mask=np.ones((2, 4), dtype=bool))


def test_softmax_is_stable_for_huge_scores(rng):
    layer = nn.MultiHeadAttention(1, 4)
    x = 1e4 * rng.standard_normal((2, 5, 4)).astype(np.float32)
    y, weights = layer.forward(x, use_causal_mask=True, return_attention_scores=True)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)


def test_causal_self_attention_ignores_later_positions(rng):
    layer = nn.MultiHeadAttention(2, 4)
    x = rng.standard_normal((2, 7, 8)).astype(np.float32)
    y = layer.forward(x, use_causal_mask=True)
    changed = x.copy()
    changed[:, 4] += 1.0
    y_changed = layer.forward(changed, use_causal_mask=True)
    np.testing.assert_array_equal(y[:, :4], y_changed[:, :4])
    assert not np.allclose(y[:, 4:], y_changed[:, 4:])


def test_multi_head_self_attention_backward_matches_finite_differences(rng, float64):
    check_gradients(nn.MultiHeadAttention(2, 3), rng.standard_normal((2, 4, 5)))


def test_multi_head_attention_backward_with_causal_and_padding_masks(rng, float64):
    mask = rng.random((2, 5, 5)) < 0.6
    mask[1, 2] = False  # and a fully masked row

    class Masked(nn.MultiHeadAttention, register=False):
        def forward(self, x, training=False):
            return super().forward(x, attention_mask=mask, use_causal_mask=True)

    check_gradients(Masked(2, 3, value_dim=2), rng.standard_normal((2, 5, 4)))


def test_multi_head_cross_attention_backward_returns_one_gradient_per_input(rng, float64):
    query, value, key = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 5, 6), (2, 5, 3)))
    layer = nn.MultiHeadAttention(2, 3, value_dim=4, output_shape=5)
    errors = check_gradients(layer, (query, value, key))
    assert {"input_0", "input_1", "input_2"} <= set(errors)
    dq, dv, dk = layer.backward(np.ones((2, 3, 5)))
    assert (dq.shape, dv.shape, dk.shape) == (query.shape, value.shape, key.shape)
    # without a separate key, the value is the key and d_value collects both gradients
    errors = check_gradients(nn.MultiHeadAttention(2, 3), (query, value))
    assert {"input_0", "input_1"} <= set(errors)


def test_multi_head_cross_attention_backward_with_a_padding_mask(rng, float64):
    query, value = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 6))
    mask = rng.random((2, 3, 5)) < 0.6
    mask[0, 1] = False  # a fully masked row

    class Masked(nn.MultiHeadAttention, register=False):
        def forward(self, q, v, training=False):
            return super().forward(q, v, attention_mask=mask)

    check_gradients(Masked(2, 3), (query, value))


def test_cross_attention_of_a_sequence_with_itself_is_self_attention(rng, float64):
    layer = nn.MultiHeadAttention(2, 3)
    x = rng.standard_normal((2, 4, 6))
    y = layer.forward(x, use_causal_mask=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    np.testing.assert_allclose(layer.forward(x, x, use_causal_mask=True), y, rtol=1e-12)
    d_query, d_value = layer.backward(dy)
    np.testing.assert_allclose(d_query + d_value, dx, rtol=1e-10, atol=1e-12)


def test_multi_head_attention_backward_without_bias_and_with_dropout(rng, float64):
    check_gradients(nn.MultiHeadAttention(2, 3, use_bias=False), rng.standard_normal((2, 4, 5)))
    layer = nn.MultiHeadAttention(2, 3, dropout=0.3, seed=5)
    check_gradients(layer, rng.standard_normal((2, 4, 5)), training=True)


def test_multi_head_attention_backward_through_returned_scores(rng, float64):
    class WithScores(nn.MultiHeadAttention, register=False):
        def forward(self, x, training=False):
            return super().forward(x, use_causal_mask=True, return_attention_scores=True)

    check_gradients(WithScores(2, 3), rng.standard_normal((2, 4, 5)))


@pytest.mark.parametrize("training", [False, True])
def test_causal_scores_computed_in_query_blocks_equal_the_masked_whole(rng, float64, training):
    # use_causal_mask alone takes the blocked path (each block of queries against the keys
    # it can see); the same mask given as a boolean attention_mask takes the one-block path
    x = rng.standard_normal((2, 11, 6))
    blocked = nn.MultiHeadAttention(3, 2, dropout=0.25 if training else 0.0, seed=4)
    whole = nn.MultiHeadAttention(3, 2, dropout=0.25 if training else 0.0, seed=4)
    blocked.build(x.shape)
    whole.build(x.shape)
    for key in blocked.params:
        whole.params[key][...] = blocked.params[key]
    assert len(blocked._blocks(None, np.zeros((11, 11)), 11, 11)) > 1
    y, p = blocked.forward(x, use_causal_mask=True, return_attention_scores=True, training=training)
    mask = np.tril(np.ones((11, 11), dtype=bool))
    y_ref, p_ref = whole.forward(
        x, attention_mask=mask, return_attention_scores=True, training=training
    )
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=1e-13)
    assert np.all(p[..., ~mask] == 0.0)
    dy, dp = rng.standard_normal(y.shape), rng.standard_normal(p.shape)
    np.testing.assert_allclose(blocked.backward([dy, dp]), whole.backward([dy, dp]), atol=1e-12)
    for key in blocked.grads:
        np.testing.assert_allclose(blocked.grads[key], whole.grads[key], rtol=0, atol=1e-12)


def test_causal_blocks_never_compute_on_the_keys_no_query_sees(rng):
    # the gradient workspace's invisible corner is never written: garbage there (the largest
    # float32, which overflows when dropout scales it) must not reach a gradient or raise
    layer = nn.MultiHeadAttention(2, 4, dropout=0.5, seed=1)
    x = rng.standard_normal((2, 12, 8)).astype(np.float32)
    layer.forward(x, use_causal_mask=True, training=True)
    layer._workspace("d_weights", (2, 2, 12, 12)).fill(np.finfo(np.float32).max)
    with np.errstate(all="raise"):
        dx = layer.backward(np.ones((2, 12, 8), dtype=np.float32))
    assert np.isfinite(dx).all()
    assert all(np.isfinite(grad).all() for grad in layer.grads.values())


def test_multi_head_attention_backward_through_returned_scores_in_query_blocks(rng, float64):
    class WithScores(nn.MultiHeadAttention, register=False):
        def forward(self, x, training=False):
            return super().forward(x, use_causal_mask=True, return_attention_scores=True)

    check_gradients(WithScores(2, 3), rng.standard_normal((2, 9, 5)))


def test_dropout_changes_only_training_outputs_and_is_seeded(rng):
    x = rng.standard_normal((2, 6, 8)).astype(np.float32)
    layer = nn.MultiHeadAttention(2, 4, dropout=0.5, seed=3)
    same = nn.MultiHeadAttention(2, 4, dropout=0.5, seed=3)
    layer.build(x.shape)
    same.build(x.shape)
    for key in layer.params:
        same.params[key][...] = layer.params[key]
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x))
    trained = layer.forward(x, training=True)
    assert not np.allclose(trained, layer.forward(x))
    np.testing.assert_array_equal(trained, same.forward(x, training=True))


def test_first_layer_skips_the_input_gradient(rng):
    layer = nn.MultiHeadAttention(2, 4)
    y = layer.forward(rng.standard_normal((2, 5, 8)))
    assert backward_without_input_grad(layer, np.ones_like(y)) is None
    assert np.any(layer.grads["query_kernel"] != 0.0)


def test_forward_cached_in_pieces_equals_one_causal_forward(rng):
    layer = nn.MultiHeadAttention(2, 4)
    x = rng.standard_normal((3, 9, 8)).astype(np.float32)
    full = layer.forward(x, use_causal_mask=True)
    cache = layer.init_cache(3, max_length=4)  # grows past its capacity
    pieces = [layer.forward_cached(x[:, :5], cache)[0]]
    pieces += [layer.forward_cached(x[:, t : t + 1], cache)[0] for t in range(5, 9)]
    assert cache.length == 9
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones_like(full))


def test_multi_head_attention_rejects_bad_arguments(rng):
    with pytest.raises(ValueError, match="num_heads must be a positive integer"):
        nn.MultiHeadAttention(0, 4)
    with pytest.raises(ValueError, match="dropout"):
        nn.MultiHeadAttention(2, 4, dropout=1.0)
    layer = nn.MultiHeadAttention(2, 4)
    x = rng.standard_normal((2, 5, 8))
    with pytest.raises(ValueError, match="a key needs a value"):
        layer.forward(x, key=x)
    with pytest.raises(ValueError, match="same batch size"):
        layer.forward(x, x[:1])
    with pytest.raises(ValueError, match="attention_mask"):
        layer.forward(x, attention_mask=np.ones((2, 5, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"\(N, T, features\)"):
        layer.forward(x[0])


# --------------------------------------------------------------------------- Attention


def test_dot_attention_matches_keras_formula(rng, float64):
    query, value, key = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 5, 6), (2, 5, 4)))
    layer = nn.Attention(use_scale=True)
    layer.build([query.shape, value.shape, key.shape])
    layer.params["scale"][...] = 0.7
    value_mask = rng.random((2, 5)) < 0.7
    value_mask[:, 0] = True
    y = layer.forward(query, value, key, mask=value_mask)
    expected = reference_attention(query, value, key, 0.7, value_mask=value_mask)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_concat_attention_matches_keras_formula(rng, float64):
    query, value = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    layer = nn.Attention(use_scale=True, score_mode="concat")
    layer.build([query.shape, value.shape])
    layer.params["scale"][...], layer.params["concat_score_weight"][...] = 0.8, 1.3
    expected = reference_attention(query, value, value, 0.8, concat_weight=1.3)
    np.testing.assert_allclose(layer.forward(query, value), expected, rtol=1e-12)


def test_attention_query_mask_zeroes_outputs_and_causal_mask_hides_the_future(rng):
    query, value = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    query_mask = np.array([[True, True, False, True], [True, False, True, True]])
    y, weights = nn.Attention().forward(
        query, value, mask=[query_mask, None], use_causal_mask=True, return_attention_scores=True
    )
    assert np.all(y[~query_mask] == 0.0)
    assert np.all(weights[:, np.triu(np.ones((4, 4), dtype=bool), 1)] == 0.0)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"use_scale": True},
        {"score_mode": "concat"},
        {"score_mode": "concat", "use_scale": True},
    ],
)
def test_attention_backward_matches_finite_differences(options, rng, float64):
    query, value, key = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 5, 3), (2, 5, 4)))
    errors = check_gradients(nn.Attention(**options), (query, value, key))
    assert {"input_0", "input_1", "input_2"} <= set(errors)
    assert any(name.endswith("/scale") for name in errors) == options.get("use_scale", False)
    value = rng.standard_normal((2, 5, 4))  # the key is the value
    check_gradients(nn.Attention(**options), (query, value))


def test_attention_backward_with_masks_dropout_and_scores(rng, float64):
    query, value = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    value_mask = np.array([[True, True, False, True], [False, True, True, True]])
    query_mask = np.array([[True, False, True, True], [True, True, True, False]])

    class Masked(nn.Attention, register=False):
        def forward(self, q, v, training=False):
            return super().forward(
                q,
                v,
                mask=[query_mask, value_mask],
                use_causal_mask=True,
                return_attention_scores=True,
                training=training,
            )

    check_gradients(Masked(use_scale=True, dropout=0.3, seed=1), (query, value), training=True)


def test_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="score_mode"):
        nn.Attention(score_mode="general")
    with pytest.raises(ValueError, match="same feature size"):
        nn.Attention().forward(np.zeros((1, 2, 3)), np.zeros((1, 2, 4)))


# --------------------------------------------------------------------------- positions


def test_sinusoidal_encoding_values_and_offset():
    layer = nn.SinusoidalPositionalEncoding(mode="encoding")
    table = layer.forward(np.zeros((2, 6, 4)))[0]
    p = np.arange(6)[:, None]
    expected = np.concatenate([np.sin(p), np.cos(p), np.sin(p / 100.0), np.cos(p / 100.0)], axis=1)
    np.testing.assert_allclose(table, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.forward(np.zeros((1, 2, 4)), offset=4)[0], table[4:])
    x = np.ones((2, 6, 4), dtype=np.float32)
    np.testing.assert_allclose(nn.SinusoidalPositionalEncoding().forward(x), x + table)


def test_position_embedding_adds_rows_from_offset_and_checks_the_length(rng):
    layer = nn.PositionEmbedding(max_length=6)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = layer.forward(x, offset=2)
    np.testing.assert_array_equal(y, x + layer.params["embeddings"][2:5])
    with pytest.raises(ValueError, match="exceed max_length=6"):
        layer.forward(x, offset=4)
    with pytest.raises(ValueError, match="offset must be a non-negative integer"):
        layer.forward(x, offset=-1)


@pytest.mark.parametrize("mode", ["add", "encoding"])
def test_positional_encodings_backward_matches_finite_differences(mode, rng, float64):
    x = rng.standard_normal((2, 3, 4))

    class Shifted(nn.PositionEmbedding, register=False):
        def forward(self, x, training=False):
            return super().forward(x, offset=2)

    check_gradients(Shifted(6, mode=mode), x)
    check_gradients(nn.SinusoidalPositionalEncoding(mode=mode), x)


# --------------------------------------------------------------------------- TransformerBlock


def test_transformer_block_backward_matches_finite_differences(rng, float64):
    block = nn.TransformerBlock(8, 2, mlp_ratio=2, name="block")
    errors = check_gradients(block, rng.standard_normal((2, 4, 8)))
    # the LayerNormalization parameters inside the block are among the checked tensors
    assert {"block/ln_1/gamma", "block/ln_1/beta", "block/ln_2/gamma", "block/ln_2/beta"} <= set(
        errors
    )


def test_transformer_block_backward_non_causal_with_mask_and_dropout(rng, float64):
    mask = rng.random((2, 4, 4)) < 0.7
    mask[..., 0] = True

    class Masked(nn.TransformerBlock, register=False):
        def forward(self, x, training=False):
            return super().forward(x, training=training, attention_mask=mask)

    block = Masked(8, 2, mlp_ratio=1, dropout=0.2, causal=False, seed=3)
    check_gradients(block, rng.standard_normal((2, 4, 8)), training=True)


def test_transformer_block_mask_is_the_padding_of_its_self_attention(rng, float64):
    block = nn.TransformerBlock(8, 2, causal=False)
    x = rng.standard_normal((2, 5, 8))
    mask = np.array([[True, True, True, False, False], [True, True, True, True, True]])
    pairs = mask[:, :, None] & mask[:, None, :]
    np.testing.assert_allclose(
        block.forward(x, mask=mask), block.forward(x, attention_mask=pairs), rtol=0, atol=1e-14
    )
    check_gradients(WithOptions(block, mask=mask), x)


def test_transformer_block_is_causal_and_its_cache_reproduces_it(rng):
    block = nn.TransformerBlock(16, 4)
    x = rng.standard_normal((2, 8, 16)).astype(np.float32)
    y = block.forward(x)
    changed = x.copy()
    changed[:, 5] -= 2.0
    np.testing.assert_array_equal(block.forward(changed)[:, :5], y[:, :5])
    cache = block.init_cache(2, 8)
    pieces = [block.forward_cached(x[:, :3], cache)[0]]
    pieces += [block.forward_cached(x[:, t : t + 1], cache)[0] for t in range(3, 8)]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), y, rtol=1e-5, atol=1e-5)


def test_transformer_block_parts_and_arguments():
    block = nn.TransformerBlock(12, 3, mlp_ratio=2, name="blk")
    block.build((None, 5, 12))
    assert [layer.name for layer in block.layers] == [
        "blk/ln_1",
        "blk/attention",
        "blk/attention_dropout",
        "blk/ln_2",
        "blk/mlp_hidden",
        "blk/mlp_output",
        "blk/mlp_dropout",
    ]
    assert block.attention.key_dim == 4 and block.mlp_hidden.units == 24
    assert block.ln_1.epsilon == 1e-5
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.TransformerBlock(10, 3)


def test_seeded_blocks_have_identical_weights():
    first, second = nn.TransformerBlock(8, 2, seed=7), nn.TransformerBlock(8, 2, seed=7)
    for block in (first, second):
        block.build((None, 3, 8))
    for a, b in zip(nn.parameters(first), nn.parameters(second), strict=True):
        np.testing.assert_array_equal(a[0].params[a[1]], b[0].params[b[1]])


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize(
    "layer",
    [
        nn.Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=2),
        nn.MultiHeadAttention(2, 4, value_dim=3, dropout=0.1, use_bias=False, output_shape=5),
        nn.SinusoidalPositionalEncoding(max_wavelength=500.0, mode="encoding"),
        nn.PositionEmbedding(10, mode="encoding"),
        nn.TransformerBlock(8, 2, mlp_ratio=3, dropout=0.1, causal=False, epsilon=1e-6, seed=4),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_get_config_round_trips(layer):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    assert nn.LAYERS.get_class(type(layer).__name__) is type(layer)


def test_a_sequential_model_with_attention_layers_saves_and_loads(rng, tmp_path):
    model = nn.Sequential(
        [
            nn.Dense(8),
            nn.PositionEmbedding(6),
            nn.SinusoidalPositionalEncoding(),
            nn.TransformerBlock(8, 2),
            nn.MultiHeadAttention(2, 4),
            nn.Dense(3),
        ]
    )
    x = rng.standard_normal((4, 6, 5)).astype(np.float32)
    model.fit(x, rng.standard_normal((4, 6, 3)), loss="mse", optimizer="adam", verbose=0)
    y = model.forward(x)
    model.save(tmp_path / "model.npz")
    np.testing.assert_array_equal(nn.load(tmp_path / "model.npz").forward(x), y)
