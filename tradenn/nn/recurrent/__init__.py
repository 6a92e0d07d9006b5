"""Recurrent layers: RNN (Keras' SimpleRNN), LSTM, GRU and the Bidirectional wrapper.

Calling convention
------------------
Inputs are batch first, ``x (N, T, F)``; ``H = units``::

    y  = layer.forward(x, initial_state=None, mask=None, training=False)
    dx = layer.backward(dy)

* ``initial_state`` is ``None`` (zeros) or a list of arrays ``[h0]`` (RNN, GRU) or
  ``[h0, c0]`` (LSTM), each ``(N, H)``.
* The output ``y`` is ``(N, T, H)`` with ``return_sequences=True``, else ``(N, H)`` (the
  last step). With ``return_state=True`` forward returns the list ``[y, h_T]``
  (``[y, h_T, c_T]`` for LSTM) instead.
* ``backward(dy)`` takes ``dy`` shaped like the output: an array, or with ``return_state``
  the list ``[dy, dh_T]`` (``[dy, dh_T, dc_T]``) whose entries may be ``None`` (zero). It
  returns ``dx (N, T, F)`` or, when forward was given ``initial_state``, the list
  ``[dx, dh0]`` (``[dx, dh0, dc0]``).
* ``go_backwards=True`` processes the sequence from its last step to its first and, as in
  Keras, returns the sequence output in processing order (reversed), not re-reversed.
* ``mask`` is None or boolean ``(N, T)`` in input order, True at the steps that hold data
  (what ``Embedding(mask_zero=True).compute_mask`` returns). As in Keras, a masked step is
  skipped: every state is carried over, ``h_t = h_{t-1}`` (and ``c_t = c_{t-1}``), so the
  output at a masked step is the carried state (``h_0`` if the sequence starts masked) and
  the final state is the one after the last unmasked step. Backward, a masked step's state
  gradient goes unchanged to the previous step, and the step's input and the weights get
  none from it. ``compute_mask`` passes the mask on with ``return_sequences``.

Parameter names, shapes and gate orders are Keras 3's (see ``docs/layers.md``); GRU has
both of Keras' variants (``reset_after=True``, the default, and ``False``). Not
implemented: dropout, recurrent dropout, ``stateful``, ``zero_output_for_mask``.

How the work is organised
-------------------------
The input is transposed to time-major ``(T, N, F)`` once, and the input projections
``x_t W + b`` of all steps are one matrix product (the bias rides along as a row of ones).
Only the recurrence loops over time: per step one product ``h_{t-1} U`` (two for GRU with
``reset_after=False``, whose candidate product waits for the reset gate) into a
preallocated buffer and the gate arithmetic with in-place ufuncs on gate-major arrays
``(G, N, H)``, whose gate blocks are contiguous. Backpropagation through time carries only
``dh`` (and ``dc``) from step to step: the parts of the gate derivatives that do not depend
on them are computed before the loop for all steps at once, and each step's pre-activation
gradient ``dz_t`` is stored channels-last ``(N, G H)``, so that ``dz_t U^T`` and, after
the loop, ``dW``, ``dU``, ``db`` and ``dx`` are each a single product over the stacked
steps. A mask adds, per step, one masked copy forward and two elementwise products
backward (the split of ``dh`` between the cell and the carried state); without a mask
none of that code runs. Arrays that live for one call (gates, states, gradients) are
per-shape workspaces reused across calls (numpy pays for every fresh large array in page
faults), never returned to the caller.

Modules
-------
:mod:`.base` (:class:`RecurrentLayer`, :class:`GatedRecurrentLayer`, the gate layouts),
:mod:`.rnn`, :mod:`.lstm` (the gate math, :class:`LSTMCore`, :class:`LSTM`), :mod:`.gru`
and :mod:`.bidirectional`.

Constructor arguments have one home each: :class:`RecurrentLayer` takes those every
recurrent layer shares (``units``, ``activation``, the initializers, regularizers and
output options), :class:`GatedRecurrentLayer` adds ``recurrent_activation`` for LSTM, GRU
and ConvLSTM, and each layer's own constructor takes only what it adds
(``unit_forget_bias``, ``reset_after``, a ConvLSTM's convolution) and passes the rest on.

Reuse by convolutional LSTMs
----------------------------
:class:`LSTMCore` runs the LSTM recurrence and its backward pass for states of shape
``(N, ..., H)`` and reaches the weights only through the hooks of :class:`RecurrentLayer`
(``_input_projection``, ``_recurrent_product``, ``_recurrent_input_grad``,
``_parameter_and_input_grads`` and the shape hooks). A ConvLSTM subclasses it and swaps the
matrix products for convolutions. The elementwise LSTM step is available on its own as
:func:`lstm_gates_forward`, :func:`lstm_backward_factors` and :func:`lstm_gates_backward`.
"""

from .base import GatedRecurrentLayer, RecurrentLayer, gates_first, gates_last
from .bidirectional import Bidirectional
from .gru import GRU
from .lstm import (
    LSTM,
    LSTMCache,
    LSTMCore,
    lstm_backward_factors,
    lstm_gates_backward,
    lstm_gates_forward,
)
from .rnn import RNN, SimpleRNN

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "GatedRecurrentLayer",
    "LSTMCache",
    "LSTMCore",
    "RecurrentLayer",
    "SimpleRNN",
    "gates_first",
    "gates_last",
    "lstm_backward_factors",
    "lstm_gates_backward",
    "lstm_gates_forward",
]
