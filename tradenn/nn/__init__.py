"""tradenn.nn: a from-scratch neural-network library in numpy.

Layers follow Keras 3 names, shapes and parameter layouts (batch first, channels last);
every layer has an explicit ``forward(x, training)`` and ``backward(dy)``::

    from tradenn import nn

    model = nn.Sequential([nn.Dense(64, activation="relu"), nn.Dense(1)])
    history = model.fit(x, y, loss="mse", optimizer=nn.Adam(1e-3), epochs=10, batch_size=64)
    model.save("model.npz")
    same = nn.load("model.npz")

See ``docs/layers.md`` for the mathematics of every layer.
"""

from . import (
    activations,
    callbacks,
    initializers,
    losses,
    optimizers,
    regularizers,
    schedules,
    training,
)
from .allocator import TUNED as ALLOCATOR_TUNED
from .attention import (
    Attention,
    KVCache,
    MultiHeadAttention,
    PositionEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from .base import (
    LAYERS,
    InputSpec,
    Layer,
    get_dtype,
    get_rng,
    parameters,
    regularization_loss,
    set_dtype,
    set_seed,
    walk,
)
from .callbacks import (
    Callback,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
)
from .conv import Conv1D, Conv2D, Conv3D, ConvOp
from .convlstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from .core import Activation, Dense, Dropout, Embedding, Flatten, Reshape
from .gradient_check import gradcheck, gradcheck_loss, numerical_gradient
from .losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Huber,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)
from .model import Model, Sequential
from .normalization import BatchNormalization, LayerNormalization
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop
from .pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from .recurrent import GRU, LSTM, RNN, Bidirectional, SimpleRNN
from .schedules import (
    ConstantSchedule,
    CosineDecay,
    ExponentialDecay,
    ExponentialSchedule,
    LinearSchedule,
    Schedule,
    StepDecay,
)
from .sequence import AttentionPooling1D, LastTimestep
from .serialization import ModelFileError, load_model

load = load_model

__all__ = [
    "ALLOCATOR_TUNED",
    "GRU",
    "LAYERS",
    "LSTM",
    "RNN",
    "SGD",
    "Activation",
    "Adam",
    "AdamW",
    "Attention",
    "AttentionPooling1D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Bidirectional",
    "BinaryCrossentropy",
    "Callback",
    "CategoricalCrossentropy",
    "ConstantSchedule",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "ConvOp",
    "CosineDecay",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Embedding",
    "ExponentialDecay",
    "ExponentialSchedule",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "History",
    "Huber",
    "InputSpec",
    "KVCache",
    "LastTimestep",
    "Layer",
    "LayerNormalization",
    "LearningRateScheduler",
    "LinearSchedule",
    "Loss",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Model",
    "ModelCheckpoint",
    "ModelFileError",
    "MultiHeadAttention",
    "Optimizer",
    "PositionEmbedding",
    "RMSprop",
    "Reshape",
    "Schedule",
    "Sequential",
    "SimpleRNN",
    "SinusoidalPositionalEncoding",
    "SparseCategoricalCrossentropy",
    "StepDecay",
    "TransformerBlock",
    "activations",
    "callbacks",
    "get_dtype",
    "get_rng",
    "gradcheck",
    "gradcheck_loss",
    "initializers",
    "load",
    "load_model",
    "losses",
    "numerical_gradient",
    "optimizers",
    "parameters",
    "regularization_loss",
    "regularizers",
    "schedules",
    "set_dtype",
    "set_seed",
    "training",
    "walk",
]
