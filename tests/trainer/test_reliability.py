"""Reward functions that misbehave, degenerate groups, and fuzzed completions through the reward pipeline."""

from __future__ import annotations

import math
import random
import warnings
from types import SimpleNamespace

import pytest
import torch

from eapo import METHODS, EAPOConfig, EAPOTrainer
from eapo.tasks.rewards import countdown_reward
from eapo.trainer.reliability import GuardedReward, RewardFunctionError
from eapo.trainer.trainer import EAPOTrainer as _Trainer
from tiny import cpu_config_kwargs, tiny_dataset, tiny_model, tiny_tokenizer, train_tiny

warnings.filterwarnings("ignore")
PROMPTS = ["1+2=", "3+4=", "5+6=", "7+8="]


def _flaky(completions, **kwargs):
    """Raises on a completion containing 'boom', NaN for 'nan', inf for 'inf', None for 'skip', else 1."""
    out = []
    for c in completions:
        if "boom" in c:
            raise ZeroDivisionError("division by zero")
        out.append({"nan": math.nan, "inf": math.inf, "skip": None}.get(c, 1.0))
    return out


@pytest.mark.parametrize(
    "bad, problem",
    [("boom!", "raised ZeroDivisionError: division by zero"), ("nan", "returned nan"), ("inf", "returned inf")],
)
def test_bad_sample_is_named_by_default(bad, problem):
    guard = GuardedReward(_flaky, "flaky", "raise")
    completions = ["ok", "fine", bad, "good"]
    with pytest.raises(RewardFunctionError) as err:
        guard(prompts=PROMPTS, completions=completions, answer=["3", "7", "11", "15"])
    message = str(err.value)
    assert f"reward function 'flaky' on sample 2 (prompt '5+6=', completion {bad!r}) {problem}" in message
    assert "reward_error_policy='zero'" in message and "\n" not in message


def test_policy_zero_scores_bad_samples_zero_and_counts_them():
    guard = GuardedReward(_flaky, "flaky", "zero")
    values = guard(prompts=PROMPTS * 2, completions=["ok", "boom", "nan", "skip", "inf", "x", "y", "z"])
    assert values == [1.0, 0.0, 0.0, None, 0.0, 1.0, 1.0, 1.0]  # None keeps TRL's "not applicable"
    assert guard.invalid == 3


def test_wrong_number_of_values():
    def short(completions, **kwargs):
        return [1.0] * (len(completions) - 1)

    with pytest.raises(RewardFunctionError, match=r"'short' on sample 0 .* returned 0 values for 1 completions"):
        GuardedReward(short, "short", "raise")(prompts=PROMPTS, completions=["a", "b", "c", "d"])

    def batch_only(completions, **kwargs):  # right one at a time, wrong as a batch: nobody to single out
        return [0.5] if len(completions) == 1 else [0.5]

    with pytest.raises(RewardFunctionError, match=r"'batch_only' returned 1 values for 4 completions"):
        GuardedReward(batch_only, "batch_only", "raise")(prompts=PROMPTS, completions=["a", "b", "c", "d"])
    zero = GuardedReward(batch_only, "batch_only", "zero")
    assert zero(prompts=PROMPTS, completions=["a", "b", "c", "d"]) == [0.0] * 4 and zero.invalid == 4
    not_a_list = GuardedReward(lambda completions, **kw: 1.0, "scalar", "zero")
    assert not_a_list(prompts=PROMPTS, completions=["a", "b", "c", "d"]) == [0.0] * 4


def test_good_function_is_passed_through_unchanged():
    calls = []

    def exact(completions, answer, **kwargs):
        calls.append(len(completions))
        return [float(c == a) for c, a in zip(completions, answer, strict=True)]

    guard = GuardedReward(exact, "exact", "raise")
    assert guard(prompts=PROMPTS, completions=["3", "8", "11", "x"], answer=["3", "7", "11", "15"]) == [
        1.0,
        0.0,
        1.0,
        0.0,
    ]
    assert calls == [4] and guard.__name__ == "exact"  # one batched call, TRL's metric name kept


def _reward_boom_on_digit(completions, **kwargs):
    if any(c[:1].isdigit() for c in completions):
        raise ValueError("cannot parse")
    return [1.0 if c[:1] in "+-" else 0.0 for c in completions]


def test_trainer_raises_naming_the_sample(tmp_path):
    with pytest.raises(RewardFunctionError, match=r"reward function '_reward_boom_on_digit' on sample \d+ \(prompt"):
        train_tiny(EAPOTrainer, EAPOConfig, tmp_path, method="grpo", reward=_reward_boom_on_digit, max_steps=2)


def test_trainer_policy_zero_trains_and_logs_invalid_count(tmp_path):
    trainer, delta = train_tiny(
        EAPOTrainer, EAPOConfig, tmp_path, method="grpo", reward=_reward_boom_on_digit, reward_error_policy="zero"
    )
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(math.isfinite(entry["loss"]) for entry in logs)
    counts = [entry["rewards/invalid_count"] for entry in logs]
    assert sum(counts) > 0 and trainer.invalid_rewards_total == sum(counts)
    assert torch.isfinite(delta).all()


# ----- degenerate groups ---------------------------------------------------------------------------------


def _batch(advantages, rewards, entropy, mask, args):
    """A RolloutBatch built as EAPOTrainer builds it (groups of 4)."""
    fake = SimpleNamespace(args=args)
    B = advantages.shape[0]
    return _Trainer._rollout_batch(
        fake,
        advantages=advantages,
        rewards=rewards,
        entropy=entropy,
        token_logps=torch.full_like(entropy, -0.5),
        mask=mask,
        group_size=4 if B % 4 == 0 else B,
    )


def _cases():
    T = 5
    gen = torch.Generator().manual_seed(0)
    full = torch.ones(8, T)
    eos_first = full.clone()
    eos_first[:, 1:] = 0  # only the EOS token is a completion token
    padded = full.clone()
    padded[4:] = 0  # the second group is all padding
    rand_h = torch.rand(8, T, generator=gen) * 2
    mixed = torch.tensor([1.0, -1.0, 0.5, -0.5, 1.0, -1.0, 0.5, -0.5])
    return {
        "all_equal_rewards": (torch.zeros(8), torch.ones(8), rand_h, full, True),
        "all_wrong": (torch.zeros(8), torch.zeros(8), rand_h, full, True),
        "sigma_h_zero": (mixed, (mixed > 0).float(), torch.full((8, T), 0.7), full, False),
        "eos_first": (mixed, (mixed > 0).float(), rand_h, eos_first, False),
        "all_padding_rows": (mixed, (mixed > 0).float(), rand_h, padded, False),
        "zero_entropy": (mixed, (mixed > 0).float(), torch.zeros(8, T), full, False),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_degenerate_groups_give_finite_loss(method, case, tmp_path):
    from eapo.core.quadrants import quadrant_statistics

    adv, rewards, entropy, mask, all_equal = _cases()[case]
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, method=method))
    batch = _batch(adv, rewards, entropy, mask, args)
    spec = METHODS[method]
    update = spec.advantage_fn(batch, args)
    A = update.advantages
    assert torch.isfinite(A).all()
    assert (A[mask == 0] == 0).all(), "padding must carry no advantage"
    if all_equal and method != "w_reinforce":  # W-REINFORCE has no baseline: equal rewards still count
        assert (A == 0).all()
    if case == "sigma_h_zero" and method == "eapo":  # z-score 0 everywhere: A' = A exactly
        torch.testing.assert_close(A, batch.plain_advantages())
    stats = quadrant_statistics(batch.labels, batch.entropy, A, batch.token_logps, mask)
    assert all(torch.isfinite(v) for v in stats.values())
    logps = batch.token_logps.clone().requires_grad_(True)
    if spec.token_loss is not None:
        per_token, _ = spec.token_loss(logps, batch.token_logps, A, mask, args, torch.Generator().manual_seed(0))
    else:  # TRL's clipped surrogate at ratio 1 is -A
        per_token = -A * torch.exp(logps - batch.token_logps)
    loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logps.grad).all()


def _empty_rollout(tokenizer):
    """Empty completions: EOS is the first token (the one valid token; all-padding rows are tested above)."""

    def rollout(prompts, trainer):
        ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        completions = [[tokenizer.eos_token_id] for _ in prompts]
        return {"prompt_ids": ids, "completion_ids": completions, "logprobs": None}

    return rollout


@pytest.mark.parametrize("method", ["eapo", "grpo", "kl_cov"])
def test_empty_completions_and_equal_rewards_train_without_nan(method, tmp_path):
    tokenizer = tiny_tokenizer()
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, method=method, max_steps=1, dynamic_sampling_max_rounds=2))
    trainer = EAPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=lambda completions, **kw: [1.0] * len(completions),
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
        rollout_func=_empty_rollout(tokenizer),
    )
    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert log["loss"] == 0.0  # equal rewards: no advantage anywhere
    ours = {k: v for k, v in log.items() if k.split("/")[0] in ("entropy", "advantages", "quadrant")}
    assert ours and all(math.isfinite(v) for v in ours.values()), ours
    assert torch.isfinite(trainer.last_advantages).all() and (trainer.last_advantages == 0).all()


# ----- fuzz ----------------------------------------------------------------------------------------------


def _random_completion(rng: random.Random):
    kind = rng.randrange(9)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64))).decode("utf-8", errors="replace")
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64))).decode("latin-1")
    if kind == 2:
        return (
            "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(32)))
            .encode("utf-8", "surrogatepass")
            .decode("utf-8", "replace")
        )
    if kind == 3:
        return rng.choice("0123456789+-*/=,") * rng.choice([201, 10_000, 1_000_000])  # very long
    if kind == 4:
        return "".join(rng.choice("0123456789+-*/=, \n３٣") for _ in range(rng.randrange(40)))
    if kind == 5:
        return rng.choice([None, 0, 1.5, [], {}, [None], b"3*5=15", float("nan")])
    if kind == 6:
        return [{"role": "assistant", "content": rng.choice([None, 7, "3*5=15,15+7=22", "x" * 300])}]
    if kind == 7:
        return rng.choice(["3*5=15,15+7=22", " 3*5=15,15+7=22\n", "5*3=15,7+15=22"])  # correct ones
    return "9" * rng.randrange(1, 40) + "*9=" + "9" * rng.randrange(1, 40) + ",1+1=2"  # huge numbers


def test_fuzzed_completions_through_the_verifier():
    rng = random.Random(1234)
    completions = [_random_completion(rng) for _ in range(3000)]
    rewards = countdown_reward(completions, [[3, 5, 7]] * len(completions), [22] * len(completions))
    assert set(rewards) <= {0.0, 1.0}
    assert 1.0 in rewards and 0.0 in rewards  # the correct solutions in the mix are recognised


def _fragile(completions, numbers, target, **kwargs):
    """A careless user reward: crashes or returns NaN on odd input."""
    out = []
    for c in completions:
        text = c if isinstance(c, str) else c[-1]["content"]
        out.append(float(len(text) < 50) if text.isascii() else math.nan)
    return out


@pytest.mark.parametrize("policy", ["raise", "zero"])
def test_fuzzed_completions_through_the_trainer_reward_pipeline(policy, tmp_path):
    tokenizer = tiny_tokenizer()
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, method="grpo", reward_error_policy=policy))
    trainer = EAPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=[countdown_reward, _fragile],
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
    )
    rng = random.Random(99)
    saw_error = False
    for _ in range(25):
        n = 8
        completions = [_random_completion(rng) for _ in range(n)]
        inputs = [{"prompt": "3,5,7>22:", "numbers": [3, 5, 7], "target": 22} for _ in range(n)]
        try:
            rewards = trainer._calculate_rewards(inputs, ["3,5,7>22:"] * n, completions, [[1]] * n)
        except RewardFunctionError as err:  # the only failure allowed, and only when asked to raise
            assert policy == "raise" and "'_fragile' on sample" in str(err)
            saw_error = True
            continue
        assert rewards.shape == (n, 2)
        assert set(rewards.flatten().tolist()) <= {0.0, 1.0}
    assert saw_error == (policy == "raise")
    if policy == "zero":
        assert trainer.invalid_rewards_total > 0


def test_trls_gradient_checkpointing_future_warning_is_not_repeated(tmp_path):
    """Issue 26, point 11: TRL reads transformers' deprecated `is_gradient_checkpointing` at every generation, and
    `warnings.catch_warnings()` elsewhere reset Python's memory of it: it was printed at every held-out evaluation."""
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import sys, warnings
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from eapo import EAPOConfig, EAPOTrainer
from tiny import cpu_config_kwargs, digit_reward, tiny_dataset, tiny_model, tiny_tokenizer
tok = tiny_tokenizer()
model = tiny_model(len(tok))
args = EAPOConfig(**cpu_config_kwargs({str(tmp_path)!r}, method="grpo"))
EAPOTrainer(model=model, reward_funcs=digit_reward, args=args, train_dataset=tiny_dataset(), processing_class=tok)
for _ in range(3):
    with warnings.catch_warnings():
        pass
    model.is_gradient_checkpointing
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("`is_gradient_checkpointing` is deprecated") <= 1, proc.stderr
