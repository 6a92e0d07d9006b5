"""Convolutions: ConvOp and Conv1D/2D/3D against a naive loop, gradients, training, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import conv
from tradenn.nn.conv import Conv1D, Conv2D, Conv3D, ConvOp
from tradenn.nn.gradient_check import gradcheck
from tradenn.nn.pooling import GlobalAveragePooling1D, GlobalMaxPooling1D, GlobalMaxPooling2D
from tradenn.nn.reference import conv_forward as naive_convolution
from tradenn.nn.reference import conv_padding as reference_padding

from .support import train

TOLERANCE = 1e-6
LAYERS = {1: Conv1D, 2: Conv2D, 3: Conv3D}

# ----------------------------------------------------------------------------- reference


def as_tuple(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


# (rank, input spatial, kernel_size, strides, dilation_rate, padding): every option that
# changes the arithmetic, odd and even sizes (asymmetric 'same' padding), unequal
# per-axis strides, and a tiny input that takes the exact-output-grid path at stride 1
CASES = [
    (1, (9,), 3, 1, 1, "valid"),
    (1, (8,), 4, 1, 1, "same"),
    (1, (7,), 3, 1, 1, "same"),
    (1, (8,), 3, 1, 1, "causal"),
    (1, (9,), 3, 2, 1, "valid"),
    (1, (8,), 3, 2, 1, "same"),
    (1, (7,), 2, 2, 1, "same"),
    (1, (9,), 3, 2, 1, "causal"),
    (1, (9,), 3, 1, 2, "valid"),
    (1, (8,), 3, 1, 2, "same"),
    (1, (8,), 2, 1, 3, "causal"),
    (1, (10,), 3, 2, 2, "valid"),
    (1, (9,), 2, 3, 2, "same"),
    (1, (9,), 3, 2, 2, "causal"),
    (1, (5,), 4, 1, 1, "valid"),
    (2, (5, 6), 3, 1, 1, "valid"),
    (2, (5, 6), (3, 2), 1, 1, "same"),
    (2, (6, 5), 2, 1, 1, "same"),
    (2, (7, 6), 3, 2, 1, "valid"),
    (2, (6, 7), 3, 2, 1, "same"),
    (2, (7, 6), 3, (2, 1), 1, "valid"),
    (2, (6, 7), (2, 3), (1, 2), 1, "same"),
    (2, (7, 7), 2, 1, 2, "valid"),
    (2, (6, 5), 2, 1, (2, 1), "same"),
    (2, (8, 7), 2, 2, 2, "valid"),
    (2, (7, 8), 2, (2, 1), (1, 2), "same"),
    (2, (3, 4), 3, 1, 1, "valid"),
    (3, (4, 5, 4), 2, 1, 1, "valid"),
    (3, (4, 5, 3), 3, 1, 1, "same"),
    (3, (5, 4, 5), 2, (2, 1, 2), 1, "same"),
    (3, (5, 5, 4), 2, 1, (2, 1, 1), "valid"),
    (3, (5, 4, 6), 2, (1, 2, 1), (2, 1, 2), "same"),
]
CASE_IDS = [f"{r}d-{s}-k{k}-s{st}-d{d}-{p}" for r, s, k, st, d, p in CASES]


def case_layer(case, channels_out=3, **kwargs):
    rank, _, kernel, strides, dilation, padding = case
    return LAYERS[rank](
        channels_out, kernel, strides=strides, padding=padding, dilation_rate=dilation, **kwargs
    )


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
def test_output_length_follows_the_padding_formula(padding, stride, dilation, kernel):
    op = ConvOp(1, kernel, stride, padding, dilation)
    extent = (kernel - 1) * dilation + 1
    for size in range(extent, extent + 8):
        if padding == "valid":
            expected = (size - extent) // stride + 1
        else:
            expected = math.ceil(size / stride)
        assert op.output_spatial((size,)) == (expected,)
        before, after = reference_padding(size, kernel, stride, dilation, padding)
        assert op.padding_amounts((size,)) == ((before, after),)


def test_same_padding_puts_the_odd_cell_after():
    assert ConvOp(1, 2, padding="same").padding_amounts((5,)) == ((0, 1),)
    assert ConvOp(1, 4, padding="same").padding_amounts((6,)) == ((1, 2),)
    assert ConvOp(2, (3, 2), padding="same").padding_amounts((4, 4)) == ((1, 1), (0, 1))


def test_causal_padding_is_all_on_the_left():
    assert ConvOp(1, 3, padding="causal", dilation_rate=2).padding_amounts((10,)) == ((4, 0),)


def test_unknown_spatial_sizes_stay_unknown():
    layer = Conv2D(4, 3, padding="same", strides=2)
    assert layer.compute_output_shape((None, None, 9, 2)) == (None, None, 5, 4)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_layer_output_shape_matches_compute_output_shape(case, rng):
    rank, spatial = case[:2]
    layer = case_layer(case)
    y = layer.forward(rng.standard_normal((2, *spatial, 2)))
    assert y.shape == layer.compute_output_shape((2, *spatial, 2))
    expected = naive_convolution(
        np.zeros((1, *spatial, 1)),
        np.zeros((*as_tuple(case[2], rank), 1, 1)),
        as_tuple(case[3], rank),
        as_tuple(case[4], rank),
        case[5],
    ).shape[1:-1]
    assert y.shape[1:-1] == expected


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv_op_matches_a_naive_loop(case, rng):
    rank, spatial, kernel_size, strides, dilation, padding = case
    op = ConvOp(rank, kernel_size, strides, padding, dilation)
    x = rng.standard_normal((2, *spatial, 3))
    kernel = rng.standard_normal((*as_tuple(kernel_size, rank), 3, 4))
    bias = rng.standard_normal(4)
    expected = naive_convolution(
        x, kernel, as_tuple(strides, rank), as_tuple(dilation, rank), padding
    )
    y, _ = op.forward(x, kernel)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    y_biased, _ = op.forward(x, kernel, bias)
    np.testing.assert_allclose(y_biased, expected + bias, rtol=1e-12, atol=1e-12)


def test_conv2d_layer_applies_bias_and_activation(rng):
    layer = Conv2D(3, 2, activation="relu", bias_initializer="ones")
    x = rng.standard_normal((2, 4, 5, 2)).astype(np.float32)
    y = layer.forward(x)
    z = naive_convolution(
        x.astype(np.float64), layer.params["kernel"].astype(np.float64), (1, 1), (1, 1), "valid"
    )
    np.testing.assert_allclose(y, np.maximum(z + 1.0, 0.0), rtol=1e-5, atol=1e-6)


def test_float32_layers_compute_in_float32(rng):
    layer = Conv1D(4, 3, padding="same")
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert layer.grads["kernel"].dtype == np.float32


def test_non_contiguous_input_gives_the_same_output(rng):
    layer = Conv2D(2, 3, padding="same")
    x = rng.standard_normal((2, 6, 5, 4))
    strided = np.asfortranarray(x)[:, :, :, :3]
    np.testing.assert_allclose(layer.forward(strided), layer.forward(x[..., :3].copy()))


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv_backward_matches_finite_differences(case, rng, float64):
    spatial = case[1]
    layer = case_layer(case)
    assert gradcheck(layer, rng.standard_normal((2, *spatial, 2))) < TOLERANCE


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_without_bias_backward_matches_finite_differences(rank, rng, float64):
    layer = LAYERS[rank](3, 2, padding="same", use_bias=False)
    errors = gradcheck(layer, rng.standard_normal((2, *(4,) * rank, 2)), return_errors=True)
    assert set(errors) == {"input", f"{layer.name}/kernel"}
    assert max(errors.values()) < TOLERANCE


@pytest.mark.parametrize("activation", ["tanh", "gelu", "sigmoid"])
@pytest.mark.parametrize("rank", [1, 2])
def test_conv_with_activation_backward_matches_finite_differences(activation, rank, rng, float64):
    layer = LAYERS[rank](3, 3, padding="same", activation=activation)
    assert gradcheck(layer, rng.standard_normal((2, *(5,) * rank, 2))) < TOLERANCE


def test_conv_with_relu_backward_matches_finite_differences(rng, float64):
    layer = Conv2D(3, 2, activation="relu")
    layer.build((None, 4, 4, 2))
    layer.params["bias"][:] = [0.8, -0.9, 1.1]  # keep pre-activations away from the kink
    assert gradcheck(layer, rng.standard_normal((2, 4, 4, 2)) * 0.1) < TOLERANCE


def test_kernel_regularizer_gradient_matches_finite_differences(rng, float64):
    layer = Conv1D(3, 3, kernel_regularizer=nn.regularizers.L2(0.1))
    assert gradcheck(layer, rng.standard_normal((2, 6, 2))) < TOLERANCE


def test_stacked_conv_model_backward_matches_finite_differences(rng, float64):
    model = nn.Sequential(
        [
            Conv1D(4, 3, padding="causal", dilation_rate=2, activation="tanh"),
            Conv1D(3, 2, strides=2),
            GlobalAveragePooling1D(),
            nn.Dense(2),
        ]
    )
    assert gradcheck(model, rng.standard_normal((3, 9, 2))) < TOLERANCE


# ----------------------------------------------------------------------------- ConvOp API


def op_and_operands(rng, padding="same", strides=1, batch=3):
    op = ConvOp(2, 3, strides, padding)
    x = rng.standard_normal((batch, 5, 6, 2))
    kernel = rng.standard_normal((3, 3, 2, 4))
    return op, x, kernel


def test_op_gradients_equal_the_separate_gradient_calls(rng):
    op, x, kernel = op_and_operands(rng)
    bias = rng.standard_normal(4)
    y, ctx = op.forward(x, kernel, bias)
    dy = rng.standard_normal(y.shape)
    dx, dkernel, dbias = op.gradients(dy, kernel, ctx)
    np.testing.assert_allclose(dx, op.input_grad(dy, kernel, ctx))
    np.testing.assert_allclose(dkernel, op.kernel_grad(dy, ctx))
    np.testing.assert_allclose(dbias, dy.sum(axis=(0, 1, 2)))


def test_kernel_grad_is_the_correlation_of_input_and_output_gradient(rng):
    op, x, kernel = op_and_operands(rng, padding="valid")
    y, ctx = op.forward(x, kernel)
    dy = rng.standard_normal(y.shape)
    expected = np.zeros_like(kernel)
    for a, b in np.ndindex(3, 3):  # dK[a, b] = sum_{n,i,j} x[n, i+a, j+b]^T dy[n, i, j]
        window = x[:, a : a + y.shape[1], b : b + y.shape[2]]
        expected[a, b] = np.einsum("nijc,nijf->cf", window, dy)
    np.testing.assert_allclose(op.kernel_grad(dy, ctx), expected, rtol=1e-12)


def test_kernel_grad_writes_into_out_or_accumulates(rng):
    op, x, kernel = op_and_operands(rng)
    total = np.zeros_like(kernel)
    expected = np.zeros_like(kernel)
    for _ in range(3):  # one recurrent kernel applied at three time steps
        x_t = rng.standard_normal(x.shape)
        y, ctx = op.forward(x_t, kernel)
        dy = rng.standard_normal(y.shape)
        assert op.kernel_grad(dy, ctx, out=total, accumulate=True) is total
        expected += op.kernel_grad(dy, ctx)
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    out = np.full_like(kernel, 7.0)
    assert op.kernel_grad(dy, ctx, out=out) is out
    np.testing.assert_allclose(out, op.kernel_grad(dy, ctx))


def test_stacked_contexts_give_the_summed_kernel_gradient_in_one_product(rng):
    op, _, kernel = op_and_operands(rng, strides=1)
    contexts, grads, summed = [], [], np.zeros_like(kernel)
    for _ in range(3):
        y, ctx = op.forward(rng.standard_normal((2, 5, 6, 2)), kernel)
        dy = rng.standard_normal(y.shape)
        contexts.append(ctx)
        grads.append(dy)
        summed += op.kernel_grad(dy, ctx)
    stacked = ConvOp.stack_contexts(contexts)
    assert stacked.input_shape == (6, 5, 6, 2)
    np.testing.assert_allclose(op.kernel_grad(np.concatenate(grads), stacked), summed, rtol=1e-12)


def test_contexts_and_outputs_survive_later_calls(rng):
    op, x, kernel = op_and_operands(rng)
    y1, ctx1 = op.forward(x, kernel)
    y1_copy = y1.copy()
    dy = rng.standard_normal(y1.shape)
    dx1 = op.input_grad(dy, kernel, ctx1)
    dk1 = op.kernel_grad(dy, ctx1)
    y2, _ = op.forward(rng.standard_normal(x.shape), kernel)  # reuses the op's buffers
    op.input_grad(rng.standard_normal(y2.shape), kernel, ctx1)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(op.input_grad(dy, kernel, ctx1), dx1)
    np.testing.assert_array_equal(op.kernel_grad(dy, ctx1), dk1)


@pytest.mark.parametrize(
    ("rank", "spatial", "padding", "dilation"),
    [
        (1, (9,), "causal", 2),
        (2, (5, 6), "same", 1),
        (2, (6, 7), "valid", (2, 1)),
        (3, (4, 3, 5), "same", 1),
    ],
)
def test_padded_and_exact_column_grids_agree(rank, spatial, padding, dilation, rng, monkeypatch):
    # unit-stride convolutions may compute on the whole padded grid (see conv._grid);
    # force each choice and compare outputs and all gradients
    x = rng.standard_normal((2, *spatial, 3))
    kernel = rng.standard_normal((*(2,) * rank, 3, 4))
    bias = rng.standard_normal(4)
    results = []
    for padded_grid in (False, True):
        monkeypatch.setattr(
            conv, "_grid", lambda op, padded, out, rows, p=padded_grid: padded if p else out
        )
        op = ConvOp(rank, 2, 1, padding, dilation)
        y, ctx = op.forward(x, kernel, bias)
        dy = np.linspace(-1.0, 1.0, y.size).reshape(y.shape)
        assert (ctx.columns.shape[1] > y[..., 0].size) == padded_grid
        results.append((y, *op.gradients(dy, kernel, ctx)))
    for exact, padded in zip(*results, strict=True):
        np.testing.assert_allclose(padded, exact, rtol=1e-12, atol=1e-12)


def test_op_handles_several_batch_sizes(rng):
    op, x, kernel = op_and_operands(rng)
    for batch in (1, 4, 3, 9, 2, 5, 7, 6, 8, 10, 3):
        xb = rng.standard_normal((batch, *x.shape[1:]))
        y, ctx = op.forward(xb, kernel)
        np.testing.assert_allclose(y, naive_convolution(xb, kernel, (1, 1), (1, 1), "same"))
        assert op.input_grad(np.ones_like(y), kernel, ctx).shape == xb.shape


def test_op_rejects_mismatched_operands(rng):
    op, x, kernel = op_and_operands(rng)
    with pytest.raises(ValueError, match=r"expected input of rank 4"):
        op.forward(x[0], kernel)
    with pytest.raises(ValueError, match=r"does not fit kernel_size \(3, 3\) and 2 input"):
        op.forward(x, kernel[:2])
    with pytest.raises(ValueError, match=r"dtypes differ"):
        op.forward(x.astype(np.float32), kernel)
    y, ctx = op.forward(x, kernel)
    with pytest.raises(ValueError, match=r"expected dy of shape"):
        op.input_grad(y[:, :-1], kernel, ctx)


def test_accumulate_needs_an_output_array(rng):
    op, x, kernel = op_and_operands(rng)
    y, ctx = op.forward(x, kernel)
    with pytest.raises(ValueError, match=r"accumulate=True needs an output"):
        op.kernel_grad(y, ctx, accumulate=True)


def test_gradients_accumulate_kernel_and_bias(rng):
    op, x, kernel = op_and_operands(rng)
    bias = rng.standard_normal(4)
    y, ctx = op.forward(x, kernel, bias)
    dkernel, dbias = np.ones_like(kernel), np.ones_like(bias)
    op.gradients(y, kernel, ctx, kernel_out=dkernel, bias_out=dbias, accumulate=True)
    np.testing.assert_allclose(dkernel, 1.0 + op.kernel_grad(y, ctx))
    np.testing.assert_allclose(dbias, 1.0 + y.sum(axis=(0, 1, 2)))
    _, _, db_only = op.gradients(y, kernel, ctx, kernel_out=dkernel, accumulate=True)
    np.testing.assert_allclose(db_only, y.sum(axis=(0, 1, 2)))


# ----------------------------------------------------------------------------- layer API


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_parameters_follow_keras_layout(rank):
    layer = LAYERS[rank](6, 3)
    layer.build((None, *(7,) * rank, 4))
    assert layer.params["kernel"].shape == (*(3,) * rank, 4, 6)
    assert layer.params["bias"].shape == (6,)
    assert set(layer.grads) == set(layer.params)
    assert layer.count_params() == 3**rank * 4 * 6 + 6


def test_default_kernel_is_glorot_uniform_over_the_receptive_field():
    layer = Conv2D(64, 3)
    layer.build((None, 8, 8, 32))
    limit = np.sqrt(6.0 / (9 * 32 + 9 * 64))
    kernel = layer.params["kernel"]
    assert limit * 0.95 < np.abs(kernel).max() <= limit
    np.testing.assert_array_equal(layer.params["bias"], 0.0)


def test_input_spec_fixes_rank_and_channels_after_build(rng):
    layer = Conv2D(2, 3)
    with pytest.raises(ValueError, match=r"expected input of shape \(None, None, None, None\)"):
        layer.forward(rng.standard_normal((2, 5, 5)))
    layer.forward(rng.standard_normal((2, 5, 5, 3)))
    layer.forward(rng.standard_normal((4, 7, 6, 3)))  # other batch and image sizes are fine
    with pytest.raises(ValueError, match=r"expected input of shape \(None, None, None, 3\)"):
        layer.forward(rng.standard_normal((2, 5, 5, 4)))


def test_input_smaller_than_the_kernel_is_a_clear_error(rng):
    layer = Conv1D(2, 3, dilation_rate=2)
    with pytest.raises(ValueError, match=r"input size 4 on spatial axis 0 is smaller"):
        layer.forward(rng.standard_normal((2, 4, 1)))


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        Conv1D(2, 3).backward(np.ones((1, 3, 2)))


def test_backward_checks_the_gradient_shape(rng):
    layer = Conv1D(2, 3)
    layer.forward(rng.standard_normal((2, 6, 1)))
    with pytest.raises(ValueError, match=r"backward expected dy of shape \(2, 4, 2\)"):
        layer.backward(np.ones((2, 5, 2)))


def test_backward_overwrites_gradients_and_leaves_inputs_alone(rng):
    layer = Conv2D(3, 2, padding="same", activation="tanh")
    x = rng.standard_normal((2, 4, 5, 2)).astype(np.float32)
    dy = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    x_copy, dy_copy = x.copy(), dy.copy()
    layer.forward(x)
    layer.backward(dy)
    first = layer.grads["kernel"].copy()
    layer.backward(dy)
    np.testing.assert_array_equal(layer.grads["kernel"], first)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_get_config_recreates_the_layer(rank):
    layer = LAYERS[rank](
        5,
        2,
        strides=2,
        padding="same",
        dilation_rate=1,
        activation="gelu",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=nn.regularizers.L2(0.01),
        name=f"conv_{rank}",
    )
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert clone.kernel_size == (2,) * rank and clone.strides == (2,) * rank


def test_model_with_convolutions_saves_and_loads(tmp_path, rng):
    model = nn.Sequential(
        [
            Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
            Conv1D(3, 2, strides=2, kernel_regularizer=nn.regularizers.L2(1e-3)),
            GlobalMaxPooling1D(),
            nn.Dense(1),
        ]
    )
    x = rng.standard_normal((16, 12, 2))
    y = rng.standard_normal((16, 1))
    model.fit(x, y, loss="mse", optimizer=nn.Adam(0.01), epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "conv.npz")
    loaded = nn.load(tmp_path / "conv.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]


def test_first_layer_can_skip_the_input_gradient(rng):
    x = rng.standard_normal((4, 6, 7, 2)).astype(np.float32)
    layer = Conv2D(3, 3, activation="relu")
    dy = rng.standard_normal((4, 4, 5, 3)).astype(np.float32)
    layer.forward(x)
    dx = layer.backward(dy)
    full = {key: grad.copy() for key, grad in layer.grads.items()}
    layer.forward(x)
    assert nn.base.backward_without_input_grad(layer, dy) is None
    assert dx.shape == x.shape and layer.needs_input_grad  # the flag is restored
    for key, grad in layer.grads.items():  # same parameter gradients either way
        np.testing.assert_array_equal(grad, full[key])


def test_reused_context_is_overwritten_and_equal_to_a_fresh_one(rng):
    op, x, kernel = op_and_operands(rng)
    _, old = op.forward(rng.standard_normal(x.shape), kernel)
    buffer = old.columns
    y, ctx = op.forward(x, kernel, reuse=old)
    assert ctx.columns is buffer
    y_fresh, fresh = op.forward(x, kernel)
    np.testing.assert_array_equal(y, y_fresh)
    np.testing.assert_array_equal(ctx.columns, fresh.columns)
    _, other = op.forward(x[:2], kernel, reuse=ctx)  # another batch size: a new buffer
    assert other.columns is not buffer


def test_gradients_can_leave_out_the_input_gradient(rng):
    op, x, kernel = op_and_operands(rng)
    y, ctx = op.forward(x, kernel)
    dx, dkernel, dbias = op.gradients(y, kernel, ctx, with_input_grad=False)
    assert dx is None and dbias is None
    np.testing.assert_allclose(dkernel, op.kernel_grad(y, ctx))


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": 0, "kernel_size": 3}, r"filters must be a positive integer, got 0"),
        ({"filters": 2.5, "kernel_size": 3}, r"filters must be a positive integer"),
        ({"filters": 2, "kernel_size": 0}, r"kernel_size must be a positive integer or 2"),
        ({"filters": 2, "kernel_size": (3, 3, 3)}, r"kernel_size must be .* 2 positive"),
        ({"filters": 2, "kernel_size": 3, "strides": -1}, r"strides must be a positive"),
        ({"filters": 2, "kernel_size": 3, "strides": (1, 1.5)}, r"strides must be"),
        ({"filters": 2, "kernel_size": 3, "dilation_rate": (0, 1)}, r"dilation_rate must be"),
        ({"filters": 2, "kernel_size": 3, "padding": "full"}, r"padding must be one of 'valid'"),
        ({"filters": 2, "kernel_size": 3, "padding": "causal"}, r"padding must be one of 'valid'"),
        ({"filters": 2, "kernel_size": 3, "activation": "nope"}, r"nope"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2D(**kwargs)


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"Conv3D 'volume': strides must be"):
        Conv3D(2, 3, strides=0, name="volume")


def test_padding_is_case_insensitive_and_causal_is_for_conv1d():
    assert Conv1D(2, 3, padding="CAUSAL").padding == "causal"
    assert Conv2D(2, 3, padding="Same").padding == "same"
    with pytest.raises(ValueError, match=r"Conv3D .*padding must be one of 'valid', 'same'"):
        Conv3D(2, 3, padding="causal")


def test_op_rejects_bad_rank():
    with pytest.raises(ValueError, match=r"rank must be 1, 2 or 3"):
        ConvOp(4, 3)


# ----------------------------------------------------------------------------- learning


def motif_sequences(count, rng, length=32):
    """Noisy sequences; label 1 when the motif occurs, while negatives may hold a decoy."""
    motif = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    # same values in another order, correlating at most 1 (of 5) with the motif at any
    # shift: only the pattern tells the classes apart
    decoy = np.array([-1.0, -1.0, 1.0, 1.0, 1.0])
    x = rng.normal(0.0, 0.4, (count, length, 1))
    labels = rng.integers(0, 2, count)
    for i in range(count):
        start = rng.integers(0, length - len(motif) + 1)
        if labels[i]:
            x[i, start : start + len(motif), 0] += motif
        elif rng.random() < 0.5:
            x[i, start : start + len(motif), 0] += decoy
    return x.astype(np.float32), labels.astype(np.float32)[:, None]


def binary_accuracy(model, x, labels):
    """The share of ``labels`` (0 or 1) that the sign of the model's logit gets right."""
    return np.mean((model.predict(x) > 0.0) == labels)


def test_conv1d_network_detects_a_motif_anywhere_in_a_noisy_sequence():
    rng = np.random.default_rng(0)
    x, y = motif_sequences(1200, rng)
    x_test, y_test = motif_sequences(500, rng)
    model = nn.Sequential([Conv1D(8, 5, activation="relu"), GlobalMaxPooling1D(), nn.Dense(1)])
    loss = nn.BinaryCrossentropy(from_logits=True)
    train(model, x, y, loss, nn.Adam(0.01), epochs=20, batch_size=32)
    assert binary_accuracy(model, x_test, y_test) > 0.95


def bar_images(count, rng, size=10):
    """One bar of length 4-6, horizontal (label 1) or vertical (label 0), in noise."""
    x = rng.normal(0.0, 0.3, (count, size, size, 1))
    labels = rng.integers(0, 2, count)
    for i in range(count):
        length = rng.integers(4, 7)
        along, across = rng.integers(0, size - length + 1), rng.integers(0, size)
        if labels[i]:
            x[i, across, along : along + length, 0] += 1.0
        else:
            x[i, along : along + length, across, 0] += 1.0
    return x.astype(np.float32), labels.astype(np.float32)[:, None]


def test_conv2d_network_tells_horizontal_from_vertical_bars():
    rng = np.random.default_rng(1)
    x, y = bar_images(1000, rng)
    x_test, y_test = bar_images(400, rng)
    model = nn.Sequential(
        [
            Conv2D(8, 3, padding="same", activation="relu"),
            Conv2D(8, 3, strides=2, activation="relu"),
            GlobalMaxPooling2D(),
            nn.Dense(1),
        ]
    )
    loss = nn.BinaryCrossentropy(from_logits=True)
    train(model, x, y, loss, nn.Adam(0.01), epochs=10, batch_size=32)
    assert binary_accuracy(model, x_test, y_test) > 0.95
