"""TransformerLM: gradients, causality, generation with and without the cache, learning,
persistence, determinism and argument checking."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn
from tradenn.models import TransformerLM

from ..nn.support import fresh_defaults

TOLERANCE = 1e-6


@pytest.fixture(autouse=True)
def _float32_and_a_fixed_seed():
    yield from fresh_defaults()


def tiny(**options) -> TransformerLM:
    settings = {
        "vocab_size": 11,
        "context_length": 8,
        "d_model": 16,
        "num_heads": 2,
        "num_layers": 2,
        "seed": 0,
    }
    return TransformerLM(**{**settings, **options})


def periodic_windows(period: int, length: int, count: int) -> np.ndarray:
    sequence = np.tile(np.arange(period), (count + length) // period + 1)
    return np.lib.stride_tricks.sliding_window_view(sequence, length + 1)[:count].copy()


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("tie_weights", [False, True], ids=["untied", "tied"])
def test_backward_matches_finite_differences_end_to_end(tie_weights):
    nn.set_dtype(np.float64)
    lm = tiny(d_model=8, mlp_ratio=2, tie_weights=tie_weights)
    ids = np.random.default_rng(0).integers(0, 11, (2, 5))
    errors = nn.gradcheck(lm, ids, return_errors=True)
    # a key bias shifts every score of a softmax row equally: its gradient is exactly 0 and
    # finite differences return only rounding noise for it (see tests/nn/test_attention.py)
    checked = {name: e for name, e in errors.items() if not name.endswith("/key_bias")}
    assert max(checked.values()) < TOLERANCE, max(checked, key=checked.get)
    assert any(name.endswith("token_embedding/embeddings") for name in checked)
    assert any(name.endswith("/head/kernel") for name in checked) != tie_weights


def test_tied_weights_use_the_token_embedding_as_output_projection():
    lm = tiny(tie_weights=True)
    assert lm.head is None
    ids = np.array([[1, 2, 3]])
    hidden = lm.final_norm.forward(
        lm.blocks[1].forward(lm.blocks[0].forward(lm._embed(ids, 0, training=False)))
    )
    expected = hidden @ lm.token_embedding.params["embeddings"].T
    np.testing.assert_allclose(lm.forward(ids), expected, rtol=1e-6, atol=1e-6)
    assert lm.count_params() < tiny().count_params()


# --------------------------------------------------------------------------- causality


def test_changing_a_token_leaves_earlier_logits_exactly_unchanged():
    lm = tiny()
    ids = np.random.default_rng(1).integers(0, 11, (3, 8))
    logits = lm.forward(ids)
    for t in range(7):
        changed = ids.copy()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % 11
        other = lm.forward(changed)
        np.testing.assert_array_equal(other[:, : t + 1], logits[:, : t + 1])
        assert not np.array_equal(other[:, t + 1], logits[:, t + 1])


# --------------------------------------------------------------------------- generation


def test_greedy_generation_with_the_cache_equals_full_recomputation_past_the_context():
    lm = tiny()
    prompts = np.random.default_rng(2).integers(0, 11, (3, 5))
    cached = lm.generate(prompts, steps=12, temperature=0)  # 17 tokens > context 8
    recomputed = lm.generate(prompts, steps=12, temperature=0, use_cache=False)
    np.testing.assert_array_equal(cached, recomputed)
    assert cached.shape == (3, 17) and cached.dtype == np.int64
    np.testing.assert_array_equal(cached[:, :5], prompts)


def test_greedy_generation_picks_the_argmax_of_the_last_window():
    lm = tiny()
    tokens = lm.generate([4, 1, 7], steps=10, temperature=0)[0]
    for length in range(3, 13):
        window = tokens[max(0, length - 8) : length][None]
        assert tokens[length] == np.argmax(lm.forward(window)[0, -1])


@pytest.mark.parametrize(
    "sampling",
    [{}, {"temperature": 0.7, "top_k": 3}, {"temperature": 1.5, "top_p": 0.8}],
    ids=["plain", "top_k", "top_p"],
)
def test_sampled_generation_is_seeded_and_the_cache_does_not_change_it(sampling):
    lm = tiny()
    prompts = np.tile([3, 1, 4], (4, 1))
    first = lm.generate(prompts, steps=10, seed=7, **sampling)
    np.testing.assert_array_equal(first, lm.generate(prompts, steps=10, seed=7, **sampling))
    np.testing.assert_array_equal(
        first, lm.generate(prompts, steps=10, seed=7, use_cache=False, **sampling)
    )
    assert not np.array_equal(first, lm.generate(prompts, steps=10, seed=8, **sampling))
    assert len({tuple(row) for row in first}) > 1  # the rows are independent samples


def test_top_k_one_and_tiny_top_p_are_greedy():
    lm = tiny()
    greedy = lm.generate([5, 2], steps=6, temperature=0)
    np.testing.assert_array_equal(lm.generate([5, 2], steps=6, top_k=1, seed=0), greedy)
    np.testing.assert_array_equal(lm.generate([5, 2], steps=6, top_p=1e-6, seed=0), greedy)


def test_long_prompts_are_cropped_to_the_context():
    lm = tiny()
    prompt = np.random.default_rng(3).integers(0, 11, 20)
    out = lm.generate(prompt, steps=3, temperature=0)
    np.testing.assert_array_equal(out[0, :20], prompt)
    cropped = lm.generate(prompt[-8:], steps=3, temperature=0)
    np.testing.assert_array_equal(out[0, 20:], cropped[0, 8:])


# --------------------------------------------------------------------------- learning


def test_learns_a_periodic_sequence():
    windows = periodic_windows(period=7, length=16, count=512)
    lm = TransformerLM(7, 16, 32, 2, 1, seed=0)
    history = lm.fit(
        windows, epochs=3, batch_size=32, learning_rate=3e-3, warmup_steps=10, verbose=0
    )
    assert isinstance(history, nn.History)
    assert history.history["loss"][-1] < history.history["loss"][0]
    predicted = lm.forward(windows[:, :-1]).argmax(axis=-1)
    assert (predicted == windows[:, 1:]).mean() > 0.99
    continuation = lm.generate(windows[0, :5], steps=30, temperature=0)[0]
    np.testing.assert_array_equal(continuation, np.arange(35) % 7)


def test_learns_to_copy():
    rng = np.random.default_rng(0)
    half, vocab = 5, 8
    separator = vocab

    def copy_windows(count):
        tokens = rng.integers(0, vocab, (count, half))
        return np.concatenate([tokens, np.full((count, 1), separator), tokens], axis=1)

    lm = TransformerLM(vocab + 1, 2 * half + 1, 32, 2, 2, seed=0)
    lm.fit(
        copy_windows(3000), epochs=6, batch_size=64, learning_rate=3e-3, warmup_steps=20, verbose=0
    )
    test = copy_windows(300)
    predicted = lm.forward(test[:, :-1]).argmax(axis=-1)[:, half:]  # after the separator
    assert (predicted == test[:, half + 1 :]).mean() > 0.99
    copied = lm.generate(test[:, : half + 1], steps=half, temperature=0)[:, half + 1 :]
    assert (copied == test[:, :half]).mean() > 0.99


def test_fit_logs_validation_loss_and_runs_callbacks():
    windows = periodic_windows(period=5, length=8, count=64)
    seen = []

    class Record(nn.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs["loss"])

    lm = tiny(vocab_size=5)
    history = lm.fit(
        windows,
        epochs=2,
        batch_size=16,
        validation_data=windows[:8],
        callbacks=[Record()],
        verbose=0,
    )
    assert set(history.history) == {"loss", "val_loss"} and history.epoch == [0, 1]
    assert len(seen) == 8
    assert history.history["val_loss"][-1] == pytest.approx(lm.evaluate(windows[:8]))


def test_learning_rate_warms_up_linearly_then_decays_along_a_cosine():
    lm = tiny(vocab_size=5)
    lm.fit(
        periodic_windows(5, 8, 40),
        epochs=2,
        batch_size=4,
        learning_rate=1e-2,
        warmup_steps=5,
        verbose=0,
    )
    schedule = lm.optimizer._learning_rate
    rates = [schedule(step) for step in range(20)]
    np.testing.assert_allclose(rates[:6], [0.0, 2e-3, 4e-3, 6e-3, 8e-3, 1e-2])
    assert np.all(np.diff(rates[5:]) < 0) and rates[-1] > 0 and schedule(20) == pytest.approx(0)
    assert lm.optimizer.global_clipnorm == 1.0 and lm.optimizer.weight_decay == 0.01


def test_loss_is_the_mean_next_token_cross_entropy():
    lm = tiny()
    windows = np.random.default_rng(4).integers(0, 11, (5, 9))
    logits = lm.forward(windows[:, :-1]).astype(np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_p, windows[:, 1:, None], axis=-1).mean()
    assert lm.evaluate(windows, batch_size=2) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("tie_weights", [False, True], ids=["untied", "tied"])
def test_save_and_load_give_bit_identical_logits_and_optimizer_state(tie_weights, tmp_path):
    lm = tiny(tie_weights=tie_weights)
    windows = periodic_windows(period=11, length=8, count=32)
    lm.fit(windows, epochs=1, batch_size=8, verbose=0)
    lm.save(tmp_path / "lm.npz")
    loaded = TransformerLM.load(tmp_path / "lm.npz")
    assert loaded.get_config() == lm.get_config()
    np.testing.assert_array_equal(loaded.forward(windows[:, :-1]), lm.forward(windows[:, :-1]))
    assert isinstance(nn.load(tmp_path / "lm.npz"), TransformerLM)
    # the optimizer (AdamW moments, step count, schedule) comes back too
    assert loaded.train_on_batch(windows[:8]) == lm.train_on_batch(windows[:8])
    for (a, key_a, _), (b, key_b, _) in zip(nn.parameters(lm), nn.parameters(loaded), strict=True):
        np.testing.assert_array_equal(a.params[key_a], b.params[key_b])


def test_load_rejects_a_file_that_is_not_a_transformer_lm(tmp_path):
    model = nn.Sequential([nn.Dense(2)])
    model.build((None, 3))
    model.save(tmp_path / "dense.npz")
    with pytest.raises(nn.ModelFileError, match="not a TransformerLM"):
        TransformerLM.load(tmp_path / "dense.npz")


# --------------------------------------------------------------------------- determinism


def test_the_same_seed_gives_the_same_weights_training_and_samples():
    windows = periodic_windows(period=11, length=8, count=48)
    runs = []
    for _ in range(2):
        lm = tiny(dropout=0.2, seed=5)
        history = lm.fit(windows, epochs=2, batch_size=16, verbose=0)
        runs.append((lm, history))
    (first, first_history), (second, second_history) = runs
    assert first_history.history == second_history.history
    for (a, key_a, _), (b, key_b, _) in zip(
        nn.parameters(first), nn.parameters(second), strict=True
    ):
        np.testing.assert_array_equal(a.params[key_a], b.params[key_b])
    np.testing.assert_array_equal(first.generate([1], 5, seed=3), second.generate([1], 5, seed=3))
    other = tiny(seed=6)
    assert not np.array_equal(
        other.token_embedding.params["embeddings"], first.token_embedding.params["embeddings"]
    )


def test_dropout_is_active_only_in_training():
    lm = tiny(dropout=0.3)
    ids = np.random.default_rng(5).integers(0, 11, (2, 8))
    np.testing.assert_array_equal(lm.forward(ids), lm.forward(ids))
    assert not np.allclose(lm.forward(ids, training=True), lm.forward(ids))


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda lm: lm.forward(np.array([[1, 11]])), r"must lie in \[0, 11\)"),
        (lambda lm: lm.forward(np.array([[-1, 2]])), r"must lie in \[0, 11\)"),
        (lambda lm: lm.forward(np.zeros((1, 9), dtype=int)), "more than context_length=8"),
        (lambda lm: lm.forward(np.zeros(4, dtype=int)), r"shape \(N, T\)"),
        (lambda lm: lm.forward(np.full((1, 3), 0.5)), "integer token ids"),
        (lambda lm: lm.fit(np.zeros((4, 10), dtype=int), verbose=0), "more than context_length"),
        (lambda lm: lm.fit(np.zeros((4, 1), dtype=int), verbose=0), r"\(N, T \+ 1\)"),
        (
            lambda lm: lm.fit(np.zeros((4, 5), dtype=int), epochs=-2),
            r"epochs must be a non-negative",
        ),
        (
            lambda lm: lm.fit(np.zeros((4, 5), dtype=int), verbose=5),
            r"verbose must be an integer in \[0, 2\]",
        ),
        (lambda lm: lm.evaluate(np.full((2, 5), 12)), r"must lie in \[0, 11\)"),
        (lambda lm: lm.generate([1, 2], 3, temperature=-1.0), "temperature must be"),
        (lambda lm: lm.generate([1, 2], 3, temperature=float("nan")), "temperature must be"),
        (lambda lm: lm.generate([1, 2], 3, top_k=0), "top_k must be a positive integer or None"),
        (lambda lm: lm.generate([1, 2], 3, top_k=2.5), "top_k must be a positive integer or None"),
        (lambda lm: lm.generate([1, 2], 3, top_p=0.0), r"top_p must be in \(0, 1\]"),
        (lambda lm: lm.generate([1, 2], 3, top_p=1.5), r"top_p must be in \(0, 1\]"),
        (lambda lm: lm.generate([1, 2], -1), "steps must be a non-negative integer"),
        (lambda lm: lm.generate([1, 20], 3), r"prompt_ids must lie in \[0, 11\)"),
        (lambda lm: lm.generate(np.zeros((2, 0), dtype=int), 3), r"shape \(N, T\)"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(tiny())
    assert "\n" not in str(error.value)


def test_bad_constructor_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        tiny(vocab_size=0)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        tiny(d_model=10, num_heads=3)
    with pytest.raises(ValueError, match="dropout must be in"):
        tiny(dropout=1.0)


# --------------------------------------------------------------------------- long runs


@pytest.mark.slow
def test_a_larger_model_copies_long_sequences_and_its_cache_matches_past_the_context():
    rng = np.random.default_rng(1)
    half, vocab = 12, 16

    def copy_windows(count):
        tokens = rng.integers(0, vocab, (count, half))
        return np.concatenate([tokens, np.full((count, 1), vocab), tokens], axis=1)

    lm = TransformerLM(vocab + 1, 2 * half + 1, 64, 4, 2, dropout=0.05, seed=0)
    lm.fit(
        copy_windows(8000), epochs=8, batch_size=64, learning_rate=2e-3, warmup_steps=50, verbose=0
    )
    test = copy_windows(500)
    copied = lm.generate(test[:, : half + 1], steps=half, temperature=0)[:, half + 1 :]
    assert (copied == test[:, :half]).mean() > 0.99
    prompts = test[:4, : half + 1]
    for sampling in ({"temperature": 0}, {"temperature": 0.8, "top_k": 5, "seed": 2}):
        cached = lm.generate(prompts, steps=60, **sampling)
        np.testing.assert_array_equal(cached, lm.generate(prompts, 60, use_cache=False, **sampling))


def test_suppressed_tokens_are_never_generated():
    lm = TransformerLM(vocab_size=6, context_length=8, d_model=8, num_heads=2, num_layers=1, seed=0)
    out = lm.generate(
        np.zeros((64, 3), np.int64), steps=5, temperature=5.0, seed=1, suppress_tokens=[0, 1, 2]
    )
    generated = out[:, 3:]
    assert generated.min() >= 3
    assert len(np.unique(generated)) == 3  # the rest still get sampled
    with pytest.raises(ValueError, match="suppress_tokens must be ids in"):
        lm.generate(np.zeros(3, np.int64), steps=1, suppress_tokens=[6])
    with pytest.raises(ValueError, match="leaves no token"):
        lm.generate(np.zeros(3, np.int64), steps=1, suppress_tokens=range(6))
