"""Regression tests of issue 16: seven correctness bugs, the overlong penalty and the logged reward statistics.

Each test fails on the code before the fix (the reason is in its docstring) and runs a tiny CPU model.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from eapo import EAPOConfig, EAPOTrainer, Quadrant
from eapo.analysis.credit import RewardTask, sample_with_entropy
from eapo.core import forking_mask, zero_std_groups
from eapo.trainer.reliability import GuardedReward
from tiny import ascii_model_dir, cpu_config_kwargs, digit_reward, tiny_dataset, tiny_model, tiny_tokenizer

warnings.filterwarnings("ignore")
TOKENIZER = tiny_tokenizer()
BASE = dict(output_dir="unused", use_cpu=True, bf16=False, report_to="none")


def _trainer(tmp_path, reward=digit_reward, model=None, trainer_cls=EAPOTrainer, **overrides) -> EAPOTrainer:
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, **overrides))
    return trainer_cls(
        model=model if model is not None else tiny_model(len(TOKENIZER)),
        reward_funcs=reward,
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=TOKENIZER,
    )


def _step_logs(trainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


# ----- bug 1: beta != 0 with a separate reference model ------------------------------------------------


@pytest.mark.parametrize(("method", "num_iterations"), [("grpo", 1), ("dapo", 1), ("eapo", 1), ("eapo", 2)])
def test_kl_to_a_reference_model_trains(method, num_iterations, tmp_path):
    """Before: the entropy capture took the reference model's forward (no entropy head) when TRL ran no
    log pi_old forward of its own: TypeError at the first step. With num_iterations=2 TRL runs both."""
    path = tmp_path / "model"
    tiny_model(len(TOKENIZER)).save_pretrained(path)
    trainer = _trainer(tmp_path / "run", model=str(path), method=method, beta=0.04, num_iterations=num_iterations)
    assert trainer.ref_model is not None  # a separate model, not a LoRA adapter switched off
    trainer.train()
    logs = _step_logs(trainer)
    assert len(logs) == 2 and all(math.isfinite(e["loss"]) and math.isfinite(e["kl"]) for e in logs)
    assert logs[-1]["kl"] > 0  # the policy moved away from the reference
    batch = trainer.last_rollout
    valid = batch.mask.bool()
    assert (batch.entropy[valid] > 0).all() and (batch.token_logps[valid] < 0).all()


# ----- bug 2: equal non-binary rewards are not a signal --------------------------------------------------


def always_07(completions, **kwargs) -> list[float]:
    return [0.7] * len(completions)


def test_zero_std_groups_hand_computed():
    nan = math.nan
    rewards = torch.tensor(
        [0.7] * 8 + [0.7] * 7 + [0.2] + [nan] * 7 + [1.0] + [nan] * 6 + [1.0, 0.0], dtype=torch.float32
    )
    assert zero_std_groups(rewards, 8).tolist() == [True, False, True, False]
    # per reward function: a group has a signal if any function's rewards differ in it
    two = torch.tensor([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5], [1.0, 0.25]])
    assert zero_std_groups(two, 2).tolist() == [True, False]
    assert zero_std_groups(two[:, :1], 2).tolist() == [True, True]


@pytest.mark.parametrize("method", ["eapo", "grpo"])  # with and without dynamic sampling
def test_always_07_reward_has_no_signal(method, tmp_path):
    """Before: TRL's float32 std of eight 0.7 rewards is ~6e-8, advantages +-6e-4: dynamic sampling kept
    every group (informative_share 1) and their tokens got quadrant labels."""
    trainer = _trainer(
        tmp_path,
        reward=always_07,
        method=method,
        num_generations=8,
        max_steps=1,
        dynamic_sampling_max_rounds=2,
    )
    trainer.train()
    (log,) = _step_logs(trainer)
    if method == "eapo":
        assert log["dynamic_sampling/informative_share"] == 0.0
        assert log["dynamic_sampling/all_rounds/frac_reward_zero_std"] == 1.0
    assert log["frac_reward_zero_std"] == 1.0
    assert (trainer.last_rollout.advantages == 0).all() and (trainer.last_advantages == 0).all()
    assert (trainer.last_labels == Quadrant.NONE).all() and (trainer.last_rollout.labels == Quadrant.NONE).all()
    assert log["quadrant/NONE/token_share"] == 1.0


# ----- bug 3: fresh draws differ between the micro-steps of one optimizer step ----------------------------


class RecordingTrainer(EAPOTrainer):
    def _fresh_inputs(self, local_rows, round_index):
        rows = super()._fresh_inputs(local_rows, round_index)
        self.draws.append((self.state.global_step, self._step, round_index, [r["prompt"] for r in rows]))
        return rows


def always_1(completions, **kwargs) -> list[float]:
    return [1.0] * len(completions)


def test_micro_steps_draw_different_prompts(tmp_path):
    """Before: the fresh draw was seeded by (seed, global step, round) only: both micro-steps drew the same."""
    trainer = _trainer(
        tmp_path,
        reward=always_1,  # no group is informative: every generation draws fresh prompts for round 2
        trainer_cls=RecordingTrainer,
        method="dapo",
        max_steps=1,
        gradient_accumulation_steps=2,
        steps_per_generation=1,
        dynamic_sampling_max_rounds=2,
    )
    trainer.draws = []
    trainer.train()
    assert [(step, micro, round_index) for step, micro, round_index, _ in trainer.draws] == [(0, 0, 2), (0, 1, 2)]
    first, second = (prompts for *_, prompts in trainer.draws)
    assert first != second


# ----- bug 4: presets never override a value passed explicitly --------------------------------------------


def test_presets_keep_explicit_values_equal_to_trls_defaults():
    """Before: a value equal to TRL's default was taken for "not set" and replaced by the preset."""
    assert EAPOConfig(**BASE, method="grpo", loss_type="dapo").loss_type == "dapo"
    assert EAPOConfig(**BASE, method="eapo", epsilon_high=None).epsilon_high is None
    assert EAPOConfig(**BASE, method="entropy_bonus", entropy_coef=0).entropy_coef == 0
    grpo = EAPOConfig(**BASE, method="grpo")  # not passed: the preset applies
    assert grpo.loss_type == "grpo" and grpo.applied_preset == {"loss_type": "grpo"}
    assert EAPOConfig(**BASE, method="eapo", epsilon_high=None).applied_preset == {}
    assert EAPOConfig(**BASE, method="entropy_bonus").entropy_coef == pytest.approx(1e-3)


def test_explicit_fields_are_recorded_and_survive_copies():
    positional = EAPOConfig("out", 8, method="grpo", loss_type="dapo", use_cpu=True, bf16=False, report_to="none")
    assert positional.explicit_fields == {
        "output_dir",
        "per_device_train_batch_size",
        "method",
        "loss_type",
        "use_cpu",
        "bf16",
        "report_to",
    }
    for copied in (copy.deepcopy(positional), pickle.loads(pickle.dumps(positional))):
        assert copied.explicit_fields == positional.explicit_fields
        assert copied.applied_preset == positional.applied_preset and copied.loss_type == "dapo"
    eapo = EAPOConfig(**BASE, method="eapo")
    for copied in (dataclasses.replace(eapo, seed=3), EAPOConfig(**eapo.to_dict())):
        # every field passed: the source's resolved values, nothing re-applied or lost
        assert {k: v for k, v in copied.to_dict().items() if k != "seed"} == {
            k: v for k, v in eapo.to_dict().items() if k != "seed"
        }
        assert copied.explicit_fields >= {"loss_type", "epsilon_high"}
    with pytest.raises(AttributeError):
        eapo.explicit_fields = frozenset()


# ----- bug 5: numpy and torch reward outputs -----------------------------------------------------------------


@pytest.mark.parametrize("policy", ["raise", "zero"])
@pytest.mark.parametrize(
    "convert",
    [np.array, lambda v: [np.float32(x) for x in v], lambda v: torch.tensor(v), lambda v: np.array(v, dtype=np.int64)],
)
def test_guard_accepts_numpy_and_torch_rewards(policy, convert):
    """Before: a numpy array was "not a list": an error under "raise", every reward 0 under "zero"."""
    guard = GuardedReward(lambda completions, **kw: convert([1, 0, 1]), "r", policy)
    assert guard(prompts=["a", "b", "c"], completions=["x", "y", "z"]) == [1.0, 0.0, 1.0]
    assert guard.invalid == 0


def test_guard_still_rejects_arrays_of_the_wrong_shape():
    guard = GuardedReward(lambda completions, **kw: np.ones((len(completions), 2)), "r", "raise")
    with pytest.raises(RuntimeError, match="2-d array"):
        guard(prompts=["a", "b"], completions=["x", "y"])


def numpy_digit_reward(completions, **kwargs) -> np.ndarray:
    return np.array(digit_reward(completions, **kwargs))


@pytest.mark.parametrize("policy", ["raise", "zero"])
def test_trainer_accepts_numpy_rewards(policy, tmp_path):
    reference = _trainer(tmp_path / "list", method="grpo", reward_error_policy=policy, max_steps=1)
    reference.train()
    trainer = _trainer(
        tmp_path / "numpy", reward=numpy_digit_reward, method="grpo", reward_error_policy=policy, max_steps=1
    )
    trainer.train()
    (log,), (ref,) = _step_logs(trainer), _step_logs(reference)
    assert log["rewards/invalid_count"] == 0.0
    assert log["reward"] == ref["reward"] > 0  # same seed, same samples: the same rewards as the list version


# ----- bug 6: quadrant metrics describe the gradient actually applied --------------------------------------


def half_constant_reward(completions, prompts, **kwargs) -> list[float]:
    """Groups of prompts starting with '0'..'3' always get 1 (zero variance); others reward digits."""
    return [1.0 if p[0] in "0123" else float(c[:1].isdigit()) for p, c in zip(prompts, completions, strict=True)]


def reference_quadrant_metrics(batch, trained: torch.Tensor, advantages: torch.Tensor) -> dict[str, float]:
    """Token shares and gradient shares by a loop over tokens: quadrant from the sign of the applied advantage
    (0 off `trained`) and `H >= mu_H(q)`; signal `|A| (1 - p)`."""
    counts = {q.name: 0 for q in Quadrant}
    signal = {q.name: 0.0 for q in Quadrant}
    n_valid = 0
    for i in range(batch.mask.shape[0]):
        for t in range(batch.mask.shape[1]):
            if not batch.mask[i, t]:
                continue
            n_valid += 1
            a = float(advantages[i, t]) if trained[i, t] else 0.0
            high = float(batch.entropy[i, t]) >= float(batch.entropy_mean[i])
            name = "NONE" if a == 0 else ("P" if a > 0 else "N") + ("H" if high else "L") + "R"
            counts[name] += 1
            signal[name] += abs(a) * (1 - math.exp(float(batch.token_logps[i, t])))
    total = sum(signal.values())
    out = {f"quadrant/{q}/token_share": n / n_valid for q, n in counts.items()}
    out.update({f"quadrant/{q}/grad_share": signal[q] / total for q in ("PHR", "PLR", "NLR", "NHR")})
    return out


@pytest.mark.parametrize(
    "overrides",
    [
        {"method": "forking", "forking_normalizer": "all"},
        {"method": "forking", "forking_normalizer": "kept"},
        {"method": "w_reinforce"},
    ],
)
def test_quadrant_metrics_describe_the_applied_gradient(overrides, tmp_path):
    """Before: labels came from TRL's advantage over every valid token: Forking's dropped tokens sat in
    quadrants (and in grad_share with the 'kept' normaliser); W-REINFORCE's zero-variance groups were NONE
    though trained, so its grad_shares summed to less than 1."""
    trainer = _trainer(tmp_path, reward=half_constant_reward, max_steps=1, dynamic_sampling=False, **overrides)
    trainer.train()
    (log,) = _step_logs(trainer)
    batch, args = trainer.last_rollout, trainer.args
    if args.method == "forking":
        trained = forking_mask(batch.entropy, batch.mask, rho=args.forking_rho, scope=args.forking_scope)
        assert 0 < trained.sum() < batch.mask.sum()
    else:
        trained = batch.mask.bool()
        assert (batch.advantages == 0).any()  # a zero-variance group, trained all the same
    expected = reference_quadrant_metrics(batch, trained, trainer.last_advantages)
    shares = [log[f"quadrant/{q}/grad_share"] for q in ("PHR", "PLR", "NLR", "NHR")]
    assert sum(shares) == pytest.approx(1.0, abs=1e-5)
    for key, value in expected.items():
        assert log[key] == pytest.approx(value, abs=1e-5), key
    labels = trainer.last_labels
    assert ((labels != Quadrant.NONE) == (trained & (trainer.last_advantages != 0))).all()


def test_w_reinforce_quadrant_restriction_keeps_zero_variance_groups(tmp_path):
    """Before: `quadrants=` used TRL's labels, so W-REINFORCE lost every token of a zero-variance group."""
    trainer = _trainer(tmp_path, reward=half_constant_reward, method="w_reinforce", quadrants="PHR,PLR", max_steps=1)
    trainer.train()
    batch, adv = trainer.last_rollout, trainer.last_advantages
    zero_variance = (batch.advantages == 0) & (batch.rewards > 0)
    assert zero_variance.any()
    rows = batch.mask[zero_variance].bool()
    assert torch.allclose(adv[zero_variance][rows], torch.tensor(trainer.args.w_reinforce_lambda))
    assert (adv[batch.rewards <= 0] == 0).all()  # negative tokens: not in the chosen quadrants


QUADRANT_OF = {  # (positive advantage, high entropy) -> quadrant
    (True, True): Quadrant.PHR,
    (True, False): Quadrant.PLR,
    (False, False): Quadrant.NLR,
    (False, True): Quadrant.NHR,
}


def test_w_reinforce_quadrant_labels_follow_its_own_advantages(tmp_path):
    """Pins method.md section 4 (issue 28, point 3): polarity is the sign of the advantage the loss applies, so an
    all-correct group (TRL's A = 0, W-REINFORCE's +lambda) is PHR/PLR, not NONE. Checked token by token."""
    trainer = _trainer(tmp_path, reward=half_constant_reward, method="w_reinforce", max_steps=1)
    trainer.train()
    batch, labels = trainer.last_rollout, trainer.last_labels
    expected = torch.full_like(labels, int(Quadrant.NONE))
    for i in range(labels.shape[0]):
        positive = batch.rewards[i] > 0
        for t in range(labels.shape[1]):
            if batch.mask[i, t]:
                high = batch.entropy[i, t] >= batch.entropy_mean[i]
                expected[i, t] = int(QUADRANT_OF[bool(positive), bool(high)])
    all_correct = (batch.advantages == 0) & (batch.rewards > 0)
    assert all_correct.any() and (batch.rewards <= 0).any()
    assert (batch.labels[all_correct] == Quadrant.NONE).all()  # TRL's A would put them in no quadrant
    assert torch.equal(labels, expected)


# ----- bug 7: eapo credit samples plain softmax(logits / T) ------------------------------------------------


def _credit_samples(path, seed: int = 0):
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    task = RewardTask(["1+2=", "7*3="], lambda completions, **kw: [0.0] * len(completions))
    torch.manual_seed(seed)
    return model, sample_with_entropy(model, tokenizer, task, n=6, max_completion_length=24)


def test_credit_sampling_ignores_the_checkpoints_generation_config(tmp_path):
    """Before: only temperature/top_k/top_p were set, so no_repeat_ngram_size=1 from generation_config.json
    forbade every repeated token."""
    path = ascii_model_dir(tmp_path / "model")
    _, plain = _credit_samples(path)
    assert any(len(set(ids)) < len(ids) for ids in plain.ids)  # repeated tokens: the option would matter
    GenerationConfig(no_repeat_ngram_size=1, repetition_penalty=1.5, min_new_tokens=20).save_pretrained(path)
    model, configured = _credit_samples(path)
    assert model.generation_config.no_repeat_ngram_size == 1  # loaded, and left in place afterwards
    assert configured.ids == plain.ids
    for a, b in zip(configured.entropy, plain.entropy, strict=True):
        torch.testing.assert_close(a, b)


# ----- DAPO's overlong penalty and the logged reward statistics ---------------------------------------------


def test_dapo_preset_adds_trls_overlong_penalty_to_the_rewards(tmp_path):
    trainer = _trainer(tmp_path, reward=always_1, method="dapo", dynamic_sampling=False, max_steps=1)
    assert trainer.args.overlong_buffer_ratio == 0.2
    assert trainer.reward_func_names[-1] == "soft_overlong_punishment_reward"
    trainer.train()
    (log,) = _step_logs(trainer)
    batch = trainer.last_rollout
    lengths = batch.mask.sum(dim=1)  # completion tokens, EOS included, as TRL counts completion_ids
    # max_completion_length 6, buffer round(0.2 * 6) = 1: no penalty up to 5 tokens, -1 at 6
    expected = 1.0 - (lengths >= 6).float()
    assert (lengths >= 6).any() and (lengths < 6).any(), lengths
    torch.testing.assert_close(batch.rewards, expected)
    assert log["rewards/soft_overlong_punishment_reward/mean"] == pytest.approx(-(lengths >= 6).float().mean().item())
    assert (batch.advantages != 0).any()  # the length penalty is a signal for TRL's advantage
    assert EAPOConfig(**BASE, method="eapo").overlong_buffer_ratio == 0.0  # EAPO's paper setting has none


class SometimesUnscorable:
    """1 for a leading digit, None (unscorable) for a leading operator, 0 otherwise; remembers the None rows of
    its last call (one process: the global batch, in order)."""

    __name__ = "sometimes_unscorable"

    def __init__(self) -> None:
        self.unscored: list[bool] = []

    def __call__(self, completions, **kwargs) -> list[float | None]:
        self.unscored = [c[:1] in tuple("+-*/=,") for c in completions]
        return [None if u else float(c[:1].isdigit()) for u, c in zip(self.unscored, completions, strict=True)]


def test_overlong_penalty_does_not_score_an_unscorable_completion(tmp_path):
    """Before (issue 28, point 6): a completion whose task reward is None got the overlong penalty as its reward
    (0 or -1) and a non-zero advantage, against method.md section 1 (NaN -> advantage 0)."""
    reward = SometimesUnscorable()
    trainer = _trainer(tmp_path, reward=reward, method="dapo", dynamic_sampling=False, max_steps=1, temperature=1.5)
    trainer.train()
    batch, unscored = trainer.last_rollout, torch.tensor(reward.unscored)
    assert unscored.any() and (~unscored).any()
    assert (batch.advantages[unscored] == 0).all() and (trainer.last_advantages[unscored] == 0).all()
    assert torch.isnan(batch.rewards[unscored]).all() and not torch.isnan(batch.rewards[~unscored]).any()
    assert (batch.advantages[~unscored] != 0).any()


def prompt_reward(completions, prompts, **kwargs) -> list[float]:
    """Groups of prompts starting with '0'..'3' always get 1; others reward digits."""
    return half_constant_reward(completions, prompts)


def test_logged_reward_statistics_describe_the_trained_batch(tmp_path):
    """Before: reward, reward_std and frac_reward_zero_std averaged every round, dropped groups included."""
    trainer = _trainer(tmp_path, reward=prompt_reward, method="eapo", max_steps=3)
    trainer.train()
    logs = _step_logs(trainer)
    assert any(e["dynamic_sampling/rounds"] > 1 for e in logs)
    for entry in logs:
        if entry["dynamic_sampling/filled_share"] == 1.0:
            assert entry["frac_reward_zero_std"] == 0.0  # only informative groups were trained on
    last = logs[-1]
    rewards = trainer.last_rollout.rewards
    assert last["reward"] == pytest.approx(rewards.mean().item(), abs=1e-6)
    assert last["reward_std"] == pytest.approx(rewards.std().item(), abs=1e-6)
    assert last["rewards/prompt_reward/mean"] == pytest.approx(rewards.mean().item(), abs=1e-6)
    if last["dynamic_sampling/rounds"] > 1:
        assert last["dynamic_sampling/all_rounds/frac_reward_zero_std"] > 0
    assert "dynamic_sampling/all_rounds/reward" in last


def test_shortfall_filler_is_not_in_the_token_mean_normaliser(tmp_path):
    """The filler of a shortfall carries no gradient and is not counted in `num_items_in_batch`."""
    trainer = _trainer(
        tmp_path, reward=prompt_reward, method="eapo", max_steps=1,
        dynamic_sampling_max_rounds=1, per_device_train_batch_size=16,
    )  # fmt: skip
    trainer.train()
    (log,) = _step_logs(trainer)
    batch, group = trainer.last_rollout, trainer.args.num_generations
    filler = zero_std_groups(batch.rewards, group).repeat_interleave(group)
    assert 0 < log["dynamic_sampling/filled_share"] < 1 and filler.any()
    assert log["frac_reward_zero_std"] == pytest.approx(1 - log["dynamic_sampling/filled_share"])
    (inputs,) = trainer._buffered_inputs
    assert inputs["num_items_in_batch"] == batch.mask[~filler].sum() < batch.mask.sum()
    assert (trainer.last_advantages[filler] == 0).all() and (trainer.last_labels[filler] == Quadrant.NONE).all()
