"""Build and execute notebooks/02_layers_from_scratch.ipynb (PYTHONPATH = worktree)."""

from notebook import build, code, md

cells = [
    md(
        """
        # 02 · Layers from scratch

        `tradenn.nn` is a neural-network library written in plain numpy: no autograd, every layer
        has a hand-written `forward` and `backward`. This notebook opens it up:

        1. what a layer is — the forward/backward contract;
        2. a `Dense` layer computed by hand in numpy, forward and backward, against
           `nn.Dense` (same numbers);
        3. checking a backward pass numerically with `nn.gradcheck`, and watching it catch a bug;
        4. training a small network on a two-class spiral with `Sequential.fit`: loss curves and
           the decision boundary;
        5. inside an LSTM: recomputing its gates from the weights and plotting them over time on a
           task where memory matters.

        The mathematics of every layer is derived in `docs/layers.md`.
        """
    ),
    md(
        """
        ## Parameters

        Small settings by default (the whole notebook runs in seconds). Scale them up freely: more
        samples, more epochs, a wider network.
        """
    ),
    code(
        """
        FAST = True
        SPIRAL_SAMPLES = 1000                 # points of the two-class spiral
        SPIRAL_EPOCHS = 200 if FAST else 600
        HIDDEN = 32                           # units per hidden layer of the spiral classifier
        SEQ_LEN = 20                          # time steps of the LSTM memory task
        LSTM_UNITS = 4
        LSTM_SAMPLES = 2000 if FAST else 8000
        LSTM_EPOCHS = 40 if FAST else 100
        SEED = 0
        """
    ),
    code(
        """
        %matplotlib inline
        import warnings

        import matplotlib.pyplot as plt
        import numpy as np

        warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without widgets
        from tradenn import nn

        plt.rcParams["figure.dpi"] = 80
        np.set_printoptions(precision=4, suppress=True)
        rng = np.random.default_rng(SEED)
        """
    ),
    md(
        """
        ## 1. What a layer is

        A layer is a function `y = f(x; θ)` with parameters `θ`, plus the means to push a
        gradient back through it. The contract every layer of `tradenn.nn` follows:

        ```python
        y  = layer.forward(x, training=False)  # builds the weights on the first call, keeps
                                               # what backward will need
        dx = layer.backward(dy)                # dy = dL/dy for that output; writes dL/dθ into
                                               # layer.grads, returns dL/dx
        layer.params["kernel"], layer.grads["kernel"]   # same keys, same shapes
        ```

        `backward` is the chain rule applied locally: given how the loss `L` changes with the
        output, it returns how `L` changes with the input (for the layer below) and with each
        parameter (for the optimizer). A network is a stack of layers; training is forward
        through the stack, backward through it in reverse, then an optimizer step on
        `params` using `grads`.

        Weights are created lazily: a layer learns its input size from the first input it sees.
        """
    ),
    code(
        """
        layer = nn.Dense(3, activation="tanh", dtype=np.float64)
        print("built before forward:", layer.built)
        x = rng.normal(size=(4, 5))          # a batch of 4 samples with 5 features
        y = layer.forward(x)
        print("built after forward: ", layer.built)
        print("x", x.shape, "-> y", y.shape)
        for key, value in layer.params.items():
            print(f"params[{key!r}]: {value.shape}, grads[{key!r}]: {layer.grads[key].shape}")
        """
    ),
    md(
        """
        ## 2. Dense by hand

        For a batch `x (N, F)`, a kernel `W (F, U)` and a bias `b (U,)`:

        * forward: `z = x @ W + b`, `y = tanh(z)`
        * backward, given `dy = ∂L/∂y`:
          * through the activation: `dz = dy * (1 − y²)` (since `tanh' = 1 − tanh²`)
          * kernel: `dW = xᵀ @ dz` — summed over the batch, since every sample used the same `W`
          * bias: `db = dz.sum(axis=0)`
          * input: `dx = dz @ Wᵀ`

        The same in numpy, with the layer's own weights, against the layer:
        """
    ),
    code(
        """
        W, b = layer.params["kernel"], layer.params["bias"]

        # forward by hand
        z = x @ W + b
        y_hand = np.tanh(z)

        # backward by hand, for an arbitrary upstream gradient dy
        dy = rng.normal(size=y_hand.shape)
        dz = dy * (1.0 - y_hand**2)
        dW_hand = x.T @ dz
        db_hand = dz.sum(axis=0)
        dx_hand = dz @ W.T

        # the layer
        y_layer = layer.forward(x, training=True)
        dx_layer = layer.backward(dy)

        for name, hand, lib in [
            ("y", y_hand, y_layer),
            ("dx", dx_hand, dx_layer),
            ("dW", dW_hand, layer.grads["kernel"]),
            ("db", db_hand, layer.grads["bias"]),
        ]:
            print(f"{name:>2}: shape {str(hand.shape):8}  max |hand - layer| = "
                  f"{np.abs(hand - lib).max():.1e}")
        """
    ),
    md(
        """
        The same numbers (up to floating-point rounding in the last digit, if at all). That is all
        a Dense layer is; the library's version adds shape checks, other activations,
        regularizers and some care about memory.

        ## 3. Checking gradients numerically

        A backward pass written by hand can be wrong in ways that still train "somewhat". The
        standard test compares it with finite differences: for any entry `a_i` of an input or a
        parameter,

        `∂L/∂a_i ≈ (L(a + ε e_i) − L(a − ε e_i)) / (2ε)`

        with an error of order `ε²`. `nn.gradcheck` does this for every entry of the input and of
        every parameter, with `L = Σ forward(x) * r` for a fixed random `r` (so `∂L/∂y = r`),
        in float64, and reports the relative error `‖analytic − numeric‖ / (‖analytic‖ +
        ‖numeric‖)` per tensor. Around 1e-10 means right; 1e-2 or more means a bug.

        One entry by hand first, then the whole check:
        """
    ),
    code(
        """
        r = rng.normal(size=(4, 3))
        loss = lambda: float((layer.forward(x) * r).sum())  # noqa: E731

        layer.forward(x)
        layer.backward(r)                 # dL/dy = r
        analytic = layer.grads["kernel"][2, 1]

        eps = 1e-6
        W[2, 1] += eps; up = loss()
        W[2, 1] -= 2 * eps; down = loss()
        W[2, 1] += eps                    # put the weight back
        numeric = (up - down) / (2 * eps)
        print(f"dL/dW[2,1]: analytic {analytic:.10f}, finite difference {numeric:.10f}")
        """
    ),
    code(
        """
        gelu = nn.Dense(3, activation="gelu", dtype=np.float64)
        print("Dense(gelu):", nn.gradcheck(gelu, rng.normal(size=(4, 5)), return_errors=True))

        lstm = nn.LSTM(4, return_sequences=True, dtype=np.float64)
        print("LSTM:       ", nn.gradcheck(lstm, rng.normal(size=(2, 6, 3)), return_errors=True))

        model = nn.Sequential([nn.Dense(8, activation="relu", dtype=np.float64),
                               nn.Dense(2, dtype=np.float64)])
        print("Sequential: ", nn.gradcheck(model, rng.normal(size=(5, 3))))
        """
    ),
    md(
        """
        Now a layer of our own with a **deliberate bug**. `Scale` multiplies each feature by a
        learned factor, `y = x * γ`. Its correct gradients are `dγ = Σ_n x * dy` (a sum over the
        batch) and `dx = dy * γ`. The buggy version averages over the batch instead of summing —
        the kind of mistake that still trains (the gradient points the right way, just N times
        too short), so a loss curve would not reveal it. Following the recipe in
        `docs/layers.md` §16: subclass `nn.Layer`, create weights in `build`, start `forward`
        with `self._prepare(x)`.
        """
    ),
    code(
        """
        class Scale(nn.Layer, register=False):
            \"\"\"y = x * gamma, one learned factor per feature.\"\"\"

            def __init__(self, buggy=False, **kwargs):
                super().__init__(**kwargs)
                self.buggy = buggy

            def build(self, input_shape):
                self.add_weight("gamma", (input_shape[-1],), initializer="ones")
                super().build(input_shape)

            def forward(self, x, training=False):
                x = self._prepare(x)
                self._x = x
                return x * self.params["gamma"]

            def backward(self, dy):
                reduce = np.mean if self.buggy else np.sum
                self.grads["gamma"][...] = reduce(self._x * dy, axis=0)
                return dy * self.params["gamma"]


        x_scale = rng.normal(size=(8, 3))
        for buggy in (False, True):
            errors = nn.gradcheck(Scale(buggy=buggy, dtype=np.float64), x_scale, return_errors=True)
            print(f"buggy={buggy!s:5}: " + ", ".join(f"{k}: {v:.1e}" for k, v in errors.items()))
        """
    ),
    md(
        """
        The input gradient is right in both versions; the parameter gradient of the buggy one is
        off by a relative error of order one — caught at once, and the check names the tensor.
        Every layer, activation and loss in `tradenn.nn` passes this check (below 1e-6) in the
        test suite.

        ## 4. Training a small network: the two-class spiral

        Two interleaved spiral arms, one per class, in the plane: not separable by any line, so the
        network must build a curved boundary. The model is two hidden ReLU layers and one output
        logit; the loss is binary cross-entropy on the logit (`from_logits=True`, numerically
        safer than a sigmoid followed by a log), and Adam does the updates. A second spiral drawn
        with another seed serves as validation data.
        """
    ),
    code(
        """
        def spiral(n, noise, seed, turns=1.5):
            \"\"\"n points on two interleaved spiral arms; labels 0/1 as a column.\"\"\"
            r = np.random.default_rng(seed)
            t = np.sqrt(r.uniform(0, 1, n)) * turns * 2 * np.pi   # angle along the arm
            label = r.integers(0, 2, n)
            angle = t + np.pi * label                              # the second arm is rotated
            points = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) / (turns * 2 * np.pi)
            points += r.normal(0, noise, points.shape)
            return points.astype(np.float32), label.astype(np.float32)[:, None]


        x_train, y_train = spiral(SPIRAL_SAMPLES, 0.03, seed=SEED)
        x_val, y_val = spiral(SPIRAL_SAMPLES, 0.03, seed=SEED + 1)

        net = nn.Sequential([
            nn.Dense(HIDDEN, activation="relu"),
            nn.Dense(HIDDEN, activation="relu"),
            nn.Dense(1),
        ])
        history = net.fit(
            x_train, y_train,
            loss=nn.BinaryCrossentropy(from_logits=True),
            optimizer=nn.Adam(0.01),
            epochs=SPIRAL_EPOCHS, batch_size=32,
            validation_data=(x_val, y_val),
            verbose=0, seed=SEED,
        )
        accuracy = lambda x, y: float(((net.predict(x) > 0) == (y > 0.5)).mean())  # noqa: E731
        print(f"final loss {history.history['loss'][-1]:.4f}, "
              f"val loss {history.history['val_loss'][-1]:.4f}")
        print(f"accuracy: train {accuracy(x_train, y_train):.3f}, "
              f"validation {accuracy(x_val, y_val):.3f}")
        """
    ),
    code(
        """
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
        ax1.semilogy(history.history["loss"], label="train")
        ax1.semilogy(history.history["val_loss"], label="validation")
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("binary cross-entropy")
        ax1.set_title("loss")
        ax1.legend()

        grid = np.linspace(-1.15, 1.15, 200)
        gx, gy = np.meshgrid(grid, grid)
        logits = net.predict(np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32))
        prob = 0.5 * (1 + np.tanh(logits.reshape(gx.shape) / 2))  # the sigmoid, overflow-free
        ax2.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax2.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1)
        ax2.scatter(*x_val.T, c=y_val.ravel(), cmap="RdBu_r", s=4, edgecolors="none")
        ax2.set_aspect("equal")
        ax2.set_title("P(class 1) and the 0.5 boundary; validation points")
        fig.tight_layout()
        """
    ),
    md(
        """
        The loss falls by two orders of magnitude. The occasional spikes are Adam overshooting
        at a constant learning rate (a decaying schedule from `nn.schedules`, or a smaller rate,
        smooths them); the training loss sits above the validation loss because it is
        averaged over the epoch while the weights are still changing, whereas the validation loss
        is measured at the epoch's end.

        The boundary follows the arms. Past the points the network has seen (the corners, the
        centre where the arms start) it has nothing to go on, and the probabilities there are
        arbitrary — a reminder that a classifier is only defined where its data are.

        ## 5. Inside an LSTM

        An LSTM keeps a cell state `c` (its memory) and a hidden state `h` (its output). At each
        step it computes four gates from the current input and the previous output, with weights
        stacked in the Keras order `i, f, c, o` (`kernel (F, 4H)`, `recurrent_kernel (H, 4H)`,
        `bias (4H,)`):

        ```
        [z_i, z_f, z_c, z_o] = x_t W + h_{t−1} U + b
        i = σ(z_i)    input gate: how much of the candidate to write
        f = σ(z_f)    forget gate: how much of the old memory to keep
        g = tanh(z_c) candidate values to write
        o = σ(z_o)    output gate: how much of the memory to show
        c_t = f * c_{t−1} + i * g
        h_t = o * tanh(c_t)
        ```

        **A task that needs memory.** Each sequence has `SEQ_LEN` steps with two inputs: a random
        value in [−1, 1] and a flag that is 1 at exactly one step in the first half. The target is
        the value at the flagged step, to be reported at the end. The network must write that
        value into memory when the flag appears and hold it, ignoring everything that follows.
        """
    ),
    code(
        """
        def recall_task(n, steps, seed):
            r = np.random.default_rng(seed)
            values = r.uniform(-1, 1, (n, steps))
            flag_at = r.integers(0, steps // 2, n)
            flags = np.zeros((n, steps))
            flags[np.arange(n), flag_at] = 1.0
            x = np.stack([values, flags], axis=-1).astype(np.float32)   # (N, T, 2)
            y = values[np.arange(n), flag_at][:, None].astype(np.float32)
            return x, y, flag_at


        x_seq, y_seq, _ = recall_task(LSTM_SAMPLES, SEQ_LEN, SEED)
        x_seq_val, y_seq_val, flag_val = recall_task(500, SEQ_LEN, SEED + 1)

        recaller = nn.Sequential([nn.LSTM(LSTM_UNITS), nn.Dense(1)])
        seq_history = recaller.fit(
            x_seq, y_seq, loss="mse", optimizer=nn.Adam(0.01),
            epochs=LSTM_EPOCHS, batch_size=64,
            validation_data=(x_seq_val, y_seq_val), verbose=0, seed=SEED,
        )
        print(f"validation MSE {seq_history.history['val_loss'][-1]:.5f} "
              f"(predicting 0 would give {float(np.mean(y_seq_val**2)):.3f})")
        """
    ),
    md(
        """
        It solves the task. To see *how*, we need the gates at every step. The LSTM's forward
        pass does compute them, but keeps them only in internal, reused work buffers (see
        `tradenn/nn/recurrent/`: gate-major arrays in a private cache for `backward`), not as
        public output. So we recompute them from the layer's weights with the equations above,
        in a plain numpy loop, and check that our hidden states match what the layer itself
        returns.
        """
    ),
    code(
        """
        lstm_layer = recaller.layers[0]
        W = lstm_layer.params["kernel"].astype(np.float64)            # (F, 4H)
        U = lstm_layer.params["recurrent_kernel"].astype(np.float64)  # (H, 4H)
        b = lstm_layer.params["bias"].astype(np.float64)              # (4H,)
        H = LSTM_UNITS
        sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731


        def lstm_by_hand(x):
            \"\"\"Run the LSTM equations on x (N, T, F); every gate and state as (T, N, H).\"\"\"
            n, steps, _ = x.shape
            h, c = np.zeros((n, H)), np.zeros((n, H))
            record = {k: [] for k in ("i", "f", "g", "o", "c", "h")}
            for t in range(steps):
                z = x[:, t] @ W + h @ U + b
                i, f = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H])
                g, o = np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
                c = f * c + i * g
                h = o * np.tanh(c)
                for k, v in zip("ifgoch", (i, f, g, o, c, h)):
                    record[k].append(v)
            return {k: np.stack(v) for k, v in record.items()}


        sample = x_seq_val[:8]
        trace = lstm_by_hand(sample.astype(np.float64))
        h_layer = lstm_layer.forward(sample)                # the layer's own last hidden state
        print(f"max |h_T by hand - h_T of layer| = {np.abs(trace['h'][-1] - h_layer).max():.1e}")
        print("prediction by hand:", (trace["h"][-1] @ recaller.layers[1].params["kernel"]
                                      + recaller.layers[1].params["bias"]).ravel()[:4])
        print("model.predict:     ", recaller.predict(sample).ravel()[:4])
        print("targets:           ", y_seq_val[:4].ravel())
        """
    ),
    code(
        """
        k = 0                                   # which validation sequence to show
        steps = np.arange(SEQ_LEN)
        flag = int(flag_val[k])
        fig, axes = plt.subplots(4, 1, figsize=(9, 7), sharex=True)
        axes[0].bar(steps, sample[k, :, 0], color="0.6", label="value")
        axes[0].bar(flag, sample[k, flag, 0], color="C3", label="value at the flag (the target)")
        axes[0].set_ylabel("input")
        axes[0].legend(loc="upper right", fontsize=8)
        for ax, key, title in [
            (axes[1], "i", "input gate i"),
            (axes[2], "f", "forget gate f"),
            (axes[3], "c", "cell state c"),
        ]:
            ax.plot(steps, trace[key][:, k, :], marker=".", lw=1)
            ax.set_ylabel(title)
        for ax in axes:
            ax.axvline(flag, color="C3", lw=0.8, ls="--")
        axes[1].set_ylim(-0.05, 1.05)
        axes[2].set_ylim(-0.05, 1.05)
        axes[3].axhline(0, color="0.7", lw=0.5)
        axes[3].set_xlabel("time step (dashed line: the flagged step)")
        axes[0].set_title(f"one validation sequence; target {y_seq_val[k, 0]:.3f}, "
                          f"prediction {recaller.predict(sample[k:k + 1])[0, 0]:.3f}")
        fig.tight_layout()
        """
    ),
    md(
        """
        One line per unit of the cell. What the textbook picture predicts for this task: the
        **input gate** `i` opens at the flagged step and stays shut otherwise; the **forget
        gate** `f` sits near 1 afterwards so the stored value is held; one unit's **cell state**
        `c` jumps to a level that encodes the target and stays flat.

        What this trained network does (default settings) is only partly that. The input gates
        do jump at the flag, but they stay half open on ordinary steps, and the forget gates
        hover around 0.8 the whole time — close to where they started (`unit_forget_bias=True`
        initializes them at σ(1) ≈ 0.73). With `f ≈ 0.8`, whatever is written at the flag would
        shrink to almost nothing within 15–20 steps, yet the prediction at the end is accurate.
        So the value is not parked in one cell: it is carried by all four units together and
        rewritten every step through the recurrent weights `U` (each step's write `i * g`
        depends on `h_{t−1}`), which is why the cell states drift rather than stay flat.

        A quick check over all validation sequences, unit by unit:
        """
    ),
    code(
        """
        full = lstm_by_hand(x_seq_val.astype(np.float64))
        n_val = len(x_seq_val)
        at_flag = np.zeros((SEQ_LEN, n_val), dtype=bool)
        at_flag[flag_val, np.arange(n_val)] = True
        after_flag = np.arange(SEQ_LEN)[:, None] > flag_val[None, :]
        before_flag = ~(at_flag | after_flag)
        print("unit | input gate: at flag, other steps | forget gate: before, after the flag")
        for unit in range(H):
            i_u, f_u = full["i"][..., unit], full["f"][..., unit]
            print(f"{unit:4d} | {i_u[at_flag].mean():10.3f} {i_u[~at_flag].mean():12.3f}"
                  f" | {f_u[before_flag].mean():12.3f} {f_u[after_flag].mean():8.3f}")
        """
    ),
    md(
        """
        Over 500 sequences: most units' input gates open noticeably wider at the flag than on
        other steps (the write), while the forget gates are about the same before and after it
        (no "hold" switch). Gradient descent found a distributed solution that solves the task
        without the clean textbook mechanism — a useful caution against reading a network's
        internals by the diagram. Try `SEQ_LEN = 60` or `LSTM_UNITS = 1` and see whether the
        solution changes. The same recomputation works for the layers inside the `lstm_forecast`
        strategy, which are these same layers.

        **Where next:** `docs/layers.md` for the derivations (backpropagation through time,
        convolutions, attention), and the forecasting notebooks for these layers on market data.
        """
    ),
]

if __name__ == "__main__":
    build("02_layers_from_scratch.ipynb", cells)
