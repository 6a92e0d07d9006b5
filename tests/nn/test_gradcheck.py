"""gradcheck itself: it catches wrong gradients, restores the module, handles any module."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn


class _Square(nn.Layer, register=False):
    """y = x^2 with a backward that can be made wrong on purpose."""

    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def forward(self, x, training=False):
        self._x = self._prepare(x)
        return self._x**2

    def backward(self, dy):
        return self.factor * self._x * dy


class _Add(nn.Layer, register=False):
    """A two-input layer: y = a + scale * b, with a trainable scale."""

    def build(self, input_shape):
        self.add_weight("scale", (input_shape[1][-1],), "ones")
        self.built = True

    def forward(self, a, b, training=False):
        if not self.built:
            self.build([np.shape(a), np.shape(b)])
        a, b = np.asarray(a, self.dtype), np.asarray(b, self.dtype)
        self._b = b
        return a + self.params["scale"] * b

    def backward(self, dy):
        self.grads["scale"][:] = (dy * self._b).reshape(-1, dy.shape[-1]).sum(axis=0)
        return dy, dy * self.params["scale"]


class _Residual(nn.Model, register=False):
    """A non-sequential model: y = x + dense_2(relu(dense_1(x)))."""

    def __init__(self, width: int):
        super().__init__()
        self.inner = nn.Dense(width, activation="tanh")
        self.outer = nn.Dense(width)
        self.layers = [self.inner, self.outer]

    def forward(self, x, training=False):
        self.built = True
        return np.asarray(x, self.dtype) + self.outer.forward(self.inner.forward(x, training))

    def backward(self, dy):
        return dy + self.inner.backward(self.outer.backward(dy))


def test_correct_backward_passes(rng):
    assert nn.gradcheck(_Square(), rng.standard_normal((3, 4))) < 1e-8


def test_wrong_backward_is_caught(rng):
    assert nn.gradcheck(_Square(factor=2.1), rng.standard_normal((3, 4))) > 1e-2


def test_wrong_parameter_gradient_is_caught(rng):
    layer = nn.Dense(3, name="probe")
    layer.build((None, 4))
    original = layer.backward

    def backward_with_bug(dy):
        dx = original(dy)
        layer.grads["kernel"] *= 1.01
        return dx

    layer.backward = backward_with_bug
    errors = nn.gradcheck(layer, rng.standard_normal((5, 4)), return_errors=True)
    assert errors["probe/kernel"] > 1e-3
    assert errors["input"] < 1e-6


def test_float32_layer_is_checked_in_float64_and_restored(rng):
    layer = nn.Dense(3)
    layer.build((None, 4))
    kernel, grad = layer.params["kernel"], layer.grads["kernel"]
    before = kernel.copy()
    assert nn.gradcheck(layer, rng.standard_normal((5, 4))) < 1e-6
    assert layer.params["kernel"] is kernel and layer.grads["kernel"] is grad
    assert kernel.dtype == np.float32 and layer.dtype == np.float32
    np.testing.assert_array_equal(kernel, before)


def test_unbuilt_layer_is_built_in_its_own_dtype(rng):
    layer = nn.Dense(3)
    nn.gradcheck(layer, rng.standard_normal((5, 4)))
    assert layer.params["kernel"].dtype == np.float32


def test_moving_statistics_are_left_unchanged(rng):
    layer = nn.BatchNormalization()
    layer.build((None, 3))
    nn.gradcheck(layer, rng.standard_normal((6, 3)), training=True)
    np.testing.assert_array_equal(layer.state["moving_mean"], np.zeros(3))
    np.testing.assert_array_equal(layer.state["moving_variance"], np.ones(3))


def test_multi_input_layer_gets_one_gradient_per_input(rng):
    errors = nn.gradcheck(
        _Add(), (rng.standard_normal((2, 3)), rng.standard_normal((2, 3))), return_errors=True
    )
    assert set(errors) >= {"input_0", "input_1"}
    assert max(errors.values()) < 1e-6


def test_non_sequential_model_is_checked_through_its_layers(rng):
    model = _Residual(4)
    errors = nn.gradcheck(model, rng.standard_normal((3, 4)), return_errors=True)
    assert len(errors) == 5  # input + two kernels + two biases
    assert max(errors.values()) < 1e-6


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 3.0])
    grad = nn.numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(grad, 3 * np.array([1.0, 4.0, 9.0]), rtol=1e-8)


def test_numerical_gradient_rejects_non_contiguous_arrays():
    x = np.ones((4, 4))[:, ::2]
    with pytest.raises(ValueError, match=r"contiguous"):
        nn.numerical_gradient(lambda: 0.0, x)


def test_loss_check_catches_a_wrong_gradient(rng):
    class _Scaled(nn.Loss):
        def _compute(self, y_true, y_pred, need_grad):
            error = y_pred - y_true
            return float(np.mean(error**2)), error  # missing the factor 2 / n

    y_pred = rng.standard_normal((4, 2))
    assert nn.gradcheck_loss(_Scaled(), np.zeros((4, 2)), y_pred) > 0.1


class _TwoOutputs:
    """y1 = 2x, y2 = x^2 summed over features: a module returning a list of outputs."""

    layers = ()
    factor = 1.0

    def __init__(self):
        self.params = {}

    def forward(self, x, training=False):
        self._x = x
        return [2.0 * x, (x * x).sum(axis=-1)]

    def backward(self, dys):
        d1, d2 = dys
        return 2.0 * d1 + 2.0 * self._x * d2[..., None] * self.factor


def test_gradcheck_handles_modules_with_several_outputs(rng):
    module = _TwoOutputs()
    assert nn.gradcheck(module, rng.standard_normal((3, 4))) < 1e-8
    module.factor = 1.5  # a wrong gradient for the second output alone is caught
    assert nn.gradcheck(module, rng.standard_normal((3, 4))) > 1e-2
