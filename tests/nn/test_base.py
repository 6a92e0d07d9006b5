"""The layer contract: naming, building, registry, config round trips, dtypes, traversal."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.serialization import deserialize_layer, serialize_layer

from .support import ACTIVATION_NAMES

ALL_LAYERS = [
    lambda: nn.Dense(4, activation="relu", kernel_regularizer=nn.regularizers.L2(1e-3)),
    lambda: nn.Activation(nn.activations.LeakyReLU(0.1)),
    lambda: nn.Dropout(0.25, seed=3),
    lambda: nn.Flatten(),
    lambda: nn.Reshape((2, -1)),
    lambda: nn.BatchNormalization(momentum=0.9, epsilon=1e-5),
    lambda: nn.LayerNormalization(epsilon=1e-5),
]


def test_layer_names_are_unique_snake_case():
    first, second = nn.BatchNormalization(), nn.BatchNormalization()
    assert first.name.startswith("batch_normalization")
    assert first.name != second.name
    assert nn.Dense(1, name="head").name == "head"


def test_layers_build_lazily_on_first_forward():
    layer = nn.Dense(2)
    assert not layer.built and layer.params == {}
    layer.forward(np.zeros((1, 3)))
    assert layer.built and layer.input_shape == (None, 3) and layer.output_shape == (None, 2)


def test_params_and_grads_have_the_same_keys_and_shapes():
    for make in ALL_LAYERS:
        layer = make()
        layer.build((None, 4, 6))
        assert layer.params.keys() == layer.grads.keys()
        for key in layer.params:
            assert layer.params[key].shape == layer.grads[key].shape


def test_params_are_the_live_arrays_forward_uses():
    layer = nn.Dense(1, use_bias=False)
    layer.build((None, 2))
    layer.params["kernel"][:] = [[1.0], [10.0]]
    np.testing.assert_allclose(layer.forward(np.array([[2.0, 3.0]])), [[32.0]])


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_config_round_trip_recreates_an_equivalent_layer(make, rng):
    layer = make()
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    layer.forward(x)
    copy = deserialize_layer(serialize_layer(layer))
    assert type(copy) is type(layer)
    assert copy.get_config() == layer.get_config()
    copy.build(x.shape)
    for key, value in layer.params.items():
        copy.params[key][...] = value
    np.testing.assert_array_equal(copy.forward(x), layer.forward(x))


def test_embedding_config_round_trip():
    layer = nn.Embedding(10, 3, name="tokens")
    copy = deserialize_layer(serialize_layer(layer))
    assert copy.get_config() == layer.get_config()


def test_subclasses_join_the_registry_by_class_name():
    class Doubler(nn.Layer):
        def forward(self, x, training=False):
            return 2 * self._prepare(x)

        def backward(self, dy):
            return 2 * dy

    assert nn.LAYERS.get_class("Doubler") is Doubler


def test_a_different_class_cannot_take_a_registered_name():
    with pytest.raises(ValueError, match=r"'Dense'.*taken"):
        type("Dense", (nn.Layer,), {})


@pytest.mark.parametrize(
    ("get", "identifier", "message"),
    [
        (nn.activations.get, 5, r"^Expected an activation name or ActivationFunction instance"),
        (nn.losses.get, None, r"^Expected a loss name or Loss instance, got None$"),
        (nn.optimizers.get, nn.Adam, r"not the class Adam"),
        (nn.optimizers.get, nn.losses.get("mse"), r"^Expected an optimizer name or Optimizer"),
    ],
)
def test_a_registry_with_a_base_class_returns_only_its_instances(get, identifier, message):
    with pytest.raises(TypeError, match=message):
        get(identifier)


def test_unknown_layer_class_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Unknown layer 'Dens'"):
        deserialize_layer({"class_name": "Dens", "config": {}})


def test_count_params_includes_state():
    layer = nn.BatchNormalization()
    layer.build((None, 5))
    assert layer.count_params() == 4 * 5


def test_default_dtype_is_float32_and_can_be_changed():
    assert nn.get_dtype() == np.float32
    nn.set_dtype(np.float64)
    layer = nn.Dense(2)
    layer.build((None, 3))
    assert layer.params["kernel"].dtype == np.float64


def test_dtype_argument_overrides_the_default():
    layer = nn.Dense(2, dtype=np.float64)
    assert layer.forward(np.zeros((1, 3), np.float32)).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.int32, np.float16])
def test_dtypes_other_than_float32_and_float64_are_rejected(dtype):
    with pytest.raises(ValueError, match=r"float32 or float64"):
        nn.set_dtype(dtype)
    with pytest.raises(ValueError, match=r"Dense 'd'.*float32 or float64"):
        nn.Dense(1, name="d", dtype=dtype)


@pytest.mark.parametrize("make", [*ALL_LAYERS, lambda: nn.Activation("gelu")])
def test_float32_stays_float32_through_forward_and_backward(make, rng):
    layer = make()
    x = rng.standard_normal((3, 4, 6))  # float64 input is cast, not propagated
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones(y.shape)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activations_keep_float32(name):
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    activation = nn.activations.get(name)
    y = activation.forward(z)
    assert y.dtype == np.float32
    assert activation.backward(np.ones_like(z), z, y).dtype == np.float32


def test_walk_and_parameters_cover_nested_models_once():
    shared = nn.Dense(2, name="shared")
    inner = nn.Sequential([shared], name="inner")
    outer = nn.Sequential([inner, nn.Dense(1, name="head")], name="outer")
    outer.build((None, 3))
    names = [layer.name for layer in nn.walk(outer)]
    assert names == ["outer", "inner", "shared", "head"]
    keys = [(layer.name, key) for layer, key, _ in nn.parameters(outer)]
    assert keys == [("shared", "kernel"), ("shared", "bias"), ("head", "kernel"), ("head", "bias")]


def test_parameters_of_a_frozen_container_are_not_trainable():
    inner = nn.Sequential([nn.Dense(2)], trainable=False)
    outer = nn.Sequential([inner, nn.Dense(1)])
    outer.build((None, 3))
    assert [trainable for _, _, trainable in nn.parameters(outer)] == [False, False, True, True]


def test_input_spec_description():
    assert nn.InputSpec(min_ndim=2, axes={-1: 8}).describe() == "(None, ..., 8)"
    assert nn.InputSpec(ndim=3, axes={-1: 4}).describe() == "(None, None, 4)"


class _Block(nn.Layer, register=False):
    """A composite layer owning sub-layers, like a future TransformerBlock."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first, self.second = nn.Dense(3), nn.LayerNormalization()
        self.layers = [self.first, self.second]

    def build(self, input_shape):
        self.first.build(input_shape)
        self.second.build(self.first.compute_output_shape(input_shape))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def forward(self, x, training=False):
        x = self._prepare(x)
        return self.second.forward(self.first.forward(x, training), training)

    def backward(self, dy):
        return self.first.backward(self.second.backward(dy))


def test_composite_layer_counts_and_exposes_its_sub_layers(rng):
    block = _Block()
    model = nn.Sequential([block, nn.Dense(1)])
    model.build((None, 4))
    assert block.count_params() == (4 * 3 + 3) + (3 + 3)
    assert model.count_params() == block.count_params() + 3 + 1
    assert len(nn.parameters(model)) == 6
    assert nn.gradcheck(model, rng.standard_normal((5, 4))) < 1e-6


# layers whose constructor passes the arguments it does not name on to its base's
EXTENDED_CONSTRUCTORS = [
    (nn.Dense, (3,)),
    (nn.Conv1D, (2, 3)),
    (nn.Conv3D, (2, 3)),
    (nn.LSTM, (3,)),
    (nn.GRU, (3,)),
    (nn.ConvLSTM2D, (2, 3)),
]


@pytest.mark.parametrize(
    ("layer_class", "arguments"), EXTENDED_CONSTRUCTORS, ids=lambda c: getattr(c, "__name__", "")
)
def test_the_signature_shows_every_argument_the_layer_saves(layer_class, arguments):
    # help() and notebooks read inspect.signature: it must list what get_config saves
    shown = set(inspect.signature(layer_class).parameters) - {"kwargs"}
    saved = set(layer_class(*arguments).get_config()) - {"name", "trainable", "dtype"}
    assert shown == saved


@pytest.mark.parametrize(
    ("layer_class", "arguments"), EXTENDED_CONSTRUCTORS, ids=lambda c: getattr(c, "__name__", "")
)
def test_every_positional_argument_of_the_signature_binds_by_position(layer_class, arguments):
    # the signature's positional order is the constructor's: passing each default by
    # position builds the same layer as passing none
    positional = [
        p
        for p in inspect.signature(layer_class).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    defaults = [p.default for p in positional[len(arguments) :]]
    config = layer_class(*arguments, *defaults, name="x").get_config()
    assert config == layer_class(*arguments, name="x").get_config()
    with pytest.raises(
        TypeError,
        match=rf"^{layer_class.__name__}: takes at most {len(positional)} positional arguments, "
        rf"got {len(positional) + 1}$",
    ):
        layer_class(*arguments, *defaults, None)
