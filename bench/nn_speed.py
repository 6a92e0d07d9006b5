"""Training-step speed of tradenn.nn against PyTorch CPU on the same networks.

Each case times one training step (forward + backward + Adam update, float32, MSE; the
``gpt`` case: sparse cross-entropy from logits and AdamW) and prints the median over many
steps after a warmup. When torch is importable the same
network and step run in torch with the same thread count and the ratio (tradenn time /
torch time) is printed. Torch gets its native layout (channels first for convolutions).

    python bench/nn_speed.py [--case mlp lstm ...] [--steps 300] [--threads 2]

Cases:

    mlp         MLP 64-256-256-1 (ReLU), batch 256
    lstm        LSTM F=8 H=64 T=64, many-to-one, + Dense(1), batch 64
    gru         GRU (reset_after) F=8 H=64 T=64, many-to-one, + Dense(1), batch 64
    conv1d      Conv1D 8->32 k=5 (ReLU) L=128 + global average + Dense(1), batch 64
    conv2d      Conv2D 3->16 k=3 (ReLU) 32x32 + global average + Dense(1), batch 32
    convlstm2d  ConvLSTM2D 1->8 k=3 'same' 16x16 T=8, many-to-one, + global average
                + Dense(1), batch 8
    gpt         decoder-only transformer LM (pre-LN, GELU-tanh MLP): vocab 256, d_model 128,
                4 heads, 2 layers, context 128, batch 16; next-token sparse cross-entropy
                from logits, AdamW (torch: the same model with scaled_dot_product_attention)

Thread counts: numpy's BLAS reads OPENBLAS_NUM_THREADS / OMP_NUM_THREADS at import, so
``--threads`` sets those before numpy is imported (2 matches this project's machines).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from _environment import use_threads_and_this_checkout

Step = Callable[[], object]

# name: (description, input shape for tradenn (channels last), target, per-step figure)
CASES: dict[str, tuple[str, tuple[int, ...], float]] = {
    "mlp": ("MLP 64-256-256-1 relu, batch 256", (256, 64), 0.80),
    "lstm": ("LSTM F8 H64 T64 + Dense(1), batch 64", (64, 64, 8), 1.00),
    "gru": ("GRU F8 H64 T64 + Dense(1), batch 64", (64, 64, 8), 0.50),
    "conv1d": ("Conv1D 8->32 k5 L128 + GAP + Dense(1), batch 64", (64, 128, 8), 1.50),
    "conv2d": ("Conv2D 3->16 k3 32x32 + GAP + Dense(1), batch 32", (32, 32, 32, 3), 1.50),
    "convlstm2d": (
        "ConvLSTM2D 1->8 k3 16x16 T8 + GAP + Dense(1), batch 8",
        (8, 8, 16, 16, 1),
        1.50,
    ),
    "gpt": ("GPT vocab256 d128 4 heads 2 layers ctx128, batch 16", (16, 129), 1.00),
}

GPT = {"vocab_size": 256, "context_length": 128, "d_model": 128, "num_heads": 4, "num_layers": 2}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--steps", type=int, default=300, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework (best kept)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads")
    return parser.parse_args()


def median_ms(step: Step, steps: int, warmup: int) -> float:
    """Median wall time of ``step`` in milliseconds."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


# --------------------------------------------------------------------------- tradenn


def tradenn_model(case: str) -> Any:
    from tradenn import nn

    if case == "mlp":
        return nn.Sequential(
            [nn.Dense(256, activation="relu"), nn.Dense(256, activation="relu"), nn.Dense(1)]
        )
    if case == "lstm":
        return nn.Sequential([nn.LSTM(64), nn.Dense(1)])
    if case == "gru":
        return nn.Sequential([nn.GRU(64), nn.Dense(1)])
    if case == "conv1d":
        return nn.Sequential(
            [nn.Conv1D(32, 5, activation="relu"), nn.GlobalAveragePooling1D(), nn.Dense(1)]
        )
    if case == "conv2d":
        return nn.Sequential(
            [nn.Conv2D(16, 3, activation="relu"), nn.GlobalAveragePooling2D(), nn.Dense(1)]
        )
    if case == "convlstm2d":
        return nn.Sequential(
            [nn.ConvLSTM2D(8, 3, padding="same"), nn.GlobalAveragePooling2D(), nn.Dense(1)]
        )
    raise ValueError(case)


def tradenn_step(case: str, seed: int = 0) -> Step:
    import numpy as np

    from tradenn import nn

    if case == "gpt":
        from tradenn.models import TransformerLM

        lm = TransformerLM(**GPT, seed=seed)
        lm.optimizer = nn.AdamW(1e-3, weight_decay=0.01)
        windows = gpt_windows(seed)
        return lambda: lm.train_on_batch(windows)
    nn.set_seed(seed)
    model = tradenn_model(case)
    shape = CASES[case][1]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.standard_normal((shape[0], 1)).astype(np.float32)
    loss, optimizer = nn.MeanSquaredError(), nn.Adam(1e-3)
    return lambda: model.train_on_batch(x, y, loss=loss, optimizer=optimizer)


def gpt_windows(seed: int) -> Any:
    """Token windows ``(batch, context + 1)``: inputs ``[:, :-1]``, targets ``[:, 1:]``."""
    import numpy as np

    shape = CASES["gpt"][1]
    return np.random.default_rng(seed).integers(0, GPT["vocab_size"], shape)


# --------------------------------------------------------------------------- torch


def torch_gpt(torch: Any) -> Any:
    """The same pre-LN GPT in torch: token + learned position embeddings, blocks with fused
    q/k/v projection and causal ``scaled_dot_product_attention`` (faster here than
    ``nn.MultiheadAttention``), GELU-tanh MLP, final LayerNorm, bias-free output projection."""
    tnn = torch.nn
    functional = torch.nn.functional
    d_model, heads = GPT["d_model"], GPT["num_heads"]

    class Block(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(d_model), tnn.LayerNorm(d_model)
            self.qkv, self.projection = (
                tnn.Linear(d_model, 3 * d_model),
                tnn.Linear(d_model, d_model),
            )
            self.mlp = tnn.Sequential(
                tnn.Linear(d_model, 4 * d_model),
                tnn.GELU(approximate="tanh"),
                tnn.Linear(4 * d_model, d_model),
            )

        def forward(self, x: Any) -> Any:
            n, steps, _ = x.shape
            q, k, v = (
                z.view(n, steps, heads, -1).transpose(1, 2)
                for z in self.qkv(self.ln_1(x)).split(d_model, dim=2)
            )
            attended = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.projection(attended.transpose(1, 2).reshape(n, steps, d_model))
            return x + self.mlp(self.ln_2(x))

    class GPTModel(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.token_embedding = tnn.Embedding(GPT["vocab_size"], d_model)
            self.position_embedding = tnn.Embedding(GPT["context_length"], d_model)
            self.blocks = tnn.ModuleList(Block() for _ in range(GPT["num_layers"]))
            self.final_norm = tnn.LayerNorm(d_model)
            self.head = tnn.Linear(d_model, GPT["vocab_size"], bias=False)

        def forward(self, ids: Any) -> Any:
            h = self.token_embedding(ids) + self.position_embedding.weight[: ids.shape[1]]
            for block in self.blocks:
                h = block(h)
            return self.head(self.final_norm(h))

    return GPTModel()


def torch_model(case: str, torch: Any) -> Any:
    tnn = torch.nn

    class LastStep(tnn.Module):
        def __init__(self, rnn: Any) -> None:
            super().__init__()
            self.rnn, self.head = rnn, tnn.Linear(rnn.hidden_size, 1)

        def forward(self, x: Any) -> Any:
            return self.head(self.rnn(x)[0][:, -1])

    class ConvGap(tnn.Module):
        def __init__(self, conv: Any, channels: int) -> None:
            super().__init__()
            self.conv, self.head = conv, tnn.Linear(channels, 1)

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.conv(x))
            return self.head(y.flatten(2).mean(dim=2))

    class ConvLSTM2D(tnn.Module):
        """The usual ConvLSTM: gates from conv(x_t) + conv(h_{t-1}), order i, f, c, o."""

        def __init__(self, channels: int, filters: int) -> None:
            super().__init__()
            self.filters = filters
            self.input_conv = tnn.Conv2d(channels, 4 * filters, 3, padding=1)
            self.recurrent_conv = tnn.Conv2d(filters, 4 * filters, 3, padding=1, bias=False)
            self.head = tnn.Linear(filters, 1)

        def forward(self, x: Any) -> Any:  # x (N, T, C, H, W)
            n, steps, _, height, width = x.shape
            projected = self.input_conv(x.flatten(0, 1)).unflatten(0, (n, steps))
            h = x.new_zeros(n, self.filters, height, width)
            c = torch.zeros_like(h)
            for t in range(steps):
                z = projected[:, t] + self.recurrent_conv(h)
                i, f, g, o = z.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            return self.head(h.flatten(2).mean(dim=2))

    if case == "mlp":
        return tnn.Sequential(
            tnn.Linear(64, 256), tnn.ReLU(), tnn.Linear(256, 256), tnn.ReLU(), tnn.Linear(256, 1)
        )
    if case == "lstm":
        return LastStep(tnn.LSTM(8, 64, batch_first=True))
    if case == "gru":
        return LastStep(tnn.GRU(8, 64, batch_first=True))
    if case == "conv1d":
        return ConvGap(tnn.Conv1d(8, 32, 5), 32)
    if case == "conv2d":
        return ConvGap(tnn.Conv2d(3, 16, 3), 16)
    if case == "convlstm2d":
        return ConvLSTM2D(1, 8)
    raise ValueError(case)


def torch_input_shape(case: str) -> tuple[int, ...]:
    """Channels-first version of the case's input shape (torch's native layout)."""
    shape = CASES[case][1]
    if case in ("conv1d", "conv2d"):
        return (shape[0], shape[-1], *shape[1:-1])
    if case == "convlstm2d":
        return (shape[0], shape[1], shape[-1], *shape[2:-1])
    return shape


def torch_step(case: str, threads: int, seed: int = 0) -> Step | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if case == "gpt":
        model = torch_gpt(torch)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        windows = torch.from_numpy(gpt_windows(seed))
        inputs, targets = windows[:, :-1], windows[:, 1:].reshape(-1)
        cross_entropy = torch.nn.CrossEntropyLoss()

        def gpt_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            logits = model(inputs)
            cross_entropy(logits.reshape(-1, logits.shape[-1]), targets).backward()
            optimizer.step()

        return gpt_step
    model = torch_model(case, torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    x = torch.randn(*torch_input_shape(case))
    y = torch.randn(x.shape[0], 1)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


# --------------------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    use_threads_and_this_checkout(args.threads)

    print("float32, forward + backward + Adam step, MSE loss (gpt: sparse CE from logits, AdamW)")
    print(f"median of {args.steps} steps after {args.warmup} warmup, best of {args.repeats} runs")
    print(f"torch with {args.threads} threads, channels-first inputs for its convolutions\n")
    print(f"{'case':<11} {'network':<52} {'tradenn':>9} {'torch':>9} {'ratio':>6} target")
    for case in args.case:
        description, _, target = CASES[case]
        ours_step, torch_run = tradenn_step(case), torch_step(case, args.threads)
        # alternate the two frameworks so both see the same background load; keep the best
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(median_ms(ours_step, args.steps, args.warmup))
            if torch_run is not None:
                theirs.append(median_ms(torch_run, args.steps, args.warmup))
        mine = f"{min(ours):7.3f}ms"
        if torch_run is None:
            print(f"{case:<11} {description:<52} {mine:>9} {'-':>9} {'-':>6}")
            continue
        ratio = min(ours) / min(theirs)
        verdict = "ok" if ratio <= target else "MISSED"
        print(
            f"{case:<11} {description:<52} {mine:>9} {min(theirs):7.3f}ms {ratio:5.2f}x "
            f"<= {target:.2f} {verdict}"
        )
    if torch_step("mlp", args.threads) is None:
        print("\ntorch not installed (pip install torch==2.13.0 to compare)")


if __name__ == "__main__":
    main()
