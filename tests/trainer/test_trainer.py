"""EAPOTrainer against TRL's GRPOTrainer, across methods, splits and quadrant masks (tiny CPU model)."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from trl import GRPOConfig, GRPOTrainer

from eapo import METHODS, EAPOConfig, EAPOTrainer, Quadrant
from tiny import cpu_config_kwargs, digit_reward, tiny_dataset, tiny_model, tiny_tokenizer, train_tiny

warnings.filterwarnings("ignore")
TOKENIZER = tiny_tokenizer()


_train = train_tiny


# SGD without gradient clipping: the parameter change is -lr * gradient, so equal changes mean equal gradients.
SGD = dict(optim="sgd", max_grad_norm=1e9, learning_rate=0.1)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_and_logs_quadrants(method, tmp_path):
    trainer, delta = _train(EAPOTrainer, EAPOConfig, tmp_path, method=method)
    assert delta.abs().sum() > 0, f"{method} did not change the parameters"
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(math.isfinite(entry["loss"]) for entry in logs)
    shares = [logs[0][f"quadrant/{q.name}/token_share"] for q in (*Quadrant,)]
    assert sum(shares) == pytest.approx(1.0, abs=1e-5)
    assert trainer.last_advantages is not None and torch.isfinite(trainer.last_advantages).all()


def test_grpo_method_equals_trl_grpo_trainer(tmp_path):
    base = tiny_model(len(TOKENIZER))
    common = dict(max_steps=1, **SGD)
    ours, d_ours = _train(EAPOTrainer, EAPOConfig, tmp_path / "a", copy.deepcopy(base), method="grpo", **common)
    trl, d_trl = _train(GRPOTrainer, GRPOConfig, tmp_path / "b", copy.deepcopy(base), loss_type="grpo", **common)
    assert ours.args.loss_type == "grpo"
    assert d_trl.abs().sum() > 0
    torch.testing.assert_close(d_ours, d_trl, rtol=1e-5, atol=1e-8)
    assert ours.state.log_history[0]["loss"] == pytest.approx(trl.state.log_history[0]["loss"], rel=1e-5, abs=1e-8)


def test_eapo_with_alpha_zero_equals_dapo(tmp_path):
    base = tiny_model(len(TOKENIZER))
    # DAPO without its overlong penalty: EAPO's paper setting has none
    _, d_dapo = _train(
        EAPOTrainer, EAPOConfig, tmp_path / "a", copy.deepcopy(base), method="dapo", overlong_buffer_ratio=0.0, **SGD
    )
    eapo0, d_eapo0 = _train(
        EAPOTrainer, EAPOConfig, tmp_path / "b", copy.deepcopy(base), method="eapo", eapo_alpha=0.0, **SGD
    )
    _, d_eapo = _train(EAPOTrainer, EAPOConfig, tmp_path / "c", copy.deepcopy(base), method="eapo", **SGD)
    assert eapo0.args.dynamic_sampling and eapo0.args.loss_type == "dapo"
    torch.testing.assert_close(d_eapo0, d_dapo, rtol=1e-5, atol=1e-8)
    assert not torch.allclose(d_eapo, d_dapo, rtol=1e-3, atol=1e-7), "alpha=0.2 should change the update"


@pytest.mark.parametrize("method", ["eapo", "forking"])
def test_split_over_accumulation_steps_gives_same_statistics_and_update(method, tmp_path):
    base = tiny_model(len(TOKENIZER))
    runs, deferred = [], []
    for batch, accumulation in ((8, 1), (4, 2), (2, 4)):
        trainer, delta = _train(
            EAPOTrainer,
            EAPOConfig,
            tmp_path / f"{batch}",
            copy.deepcopy(base),
            rollout=True,
            method=method,
            dynamic_sampling=False,
            max_steps=1,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            **SGD,
        )
        runs.append((trainer.last_rollout, trainer.last_advantages, delta))
        deferred.append(trainer._defer_to_loss("train"))
    # One micro-batch per generation: the method runs inside the loss forward; otherwise after generation.
    assert deferred == [True, False, False]
    (ref_batch, ref_adv, ref_delta), others = runs[0], runs[1:]
    assert ref_delta.abs().sum() > 0
    for batch, adv, delta in others:
        torch.testing.assert_close(batch.entropy_mean, ref_batch.entropy_mean)
        torch.testing.assert_close(batch.entropy_std, ref_batch.entropy_std)
        torch.testing.assert_close(adv, ref_adv)
        torch.testing.assert_close(delta, ref_delta, rtol=1e-4, atol=1e-7)


def test_training_on_chosen_quadrants_zeroes_the_others(tmp_path):
    trainer, _ = _train(
        EAPOTrainer, EAPOConfig, tmp_path, method="eapo", quadrants="PHR,NHR", dynamic_sampling=False, max_steps=1
    )
    labels, adv = trainer.last_rollout.labels, trainer.last_advantages
    chosen = (labels == Quadrant.PHR) | (labels == Quadrant.NHR)
    assert chosen.any() and (adv[chosen] != 0).all()
    assert (adv[~chosen] == 0).all()
    assert trainer.state.log_history[0]["quadrant/PLR/grad_share"] == 0.0


def test_eapo_shaped_quadrants_keep_plain_advantage_elsewhere(tmp_path):
    trainer, _ = _train(
        EAPOTrainer,
        EAPOConfig,
        tmp_path,
        method="eapo",
        eapo_shaped_quadrants="NHR",
        dynamic_sampling=False,
        max_steps=1,
    )
    batch, adv = trainer.last_rollout, trainer.last_advantages
    plain = batch.plain_advantages()
    nhr = batch.labels == Quadrant.NHR
    assert nhr.any()
    torch.testing.assert_close(adv[~nhr], plain[~nhr])
    assert (adv[nhr] <= plain[nhr]).all() and (adv[nhr] < plain[nhr]).any()  # high entropy, wrong: penalised more


def prompt_reward(completions, prompts, **kwargs) -> list[float]:
    """Groups of prompts starting with '0'..'3' always get 1 (no signal); others reward digits."""
    return [1.0 if p[0] in "0123" else float(c[:1].isdigit()) for p, c in zip(prompts, completions, strict=True)]


def test_dynamic_sampling_keeps_only_informative_groups(tmp_path):
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, method="dapo", max_steps=3))
    trainer = EAPOTrainer(
        model=tiny_model(len(TOKENIZER)),
        reward_funcs=prompt_reward,
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=TOKENIZER,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all(entry["dynamic_sampling/filled_share"] == 1.0 for entry in logs)
    assert any(entry["dynamic_sampling/rounds"] > 1 for entry in logs)
    group_has_signal = trainer.last_rollout.advantages.view(-1, args.num_generations).ne(0).any(dim=1)
    assert group_has_signal.all()
    assert trainer.last_rollout.advantages.shape[0] == args.generation_batch_size


@pytest.mark.parametrize("method", ["dapo", "grpo"])
def test_generated_entropy_counts_every_completion_of_every_round(method, tmp_path, monkeypatch):
    """`entropy/generated_mean`: the token mean of the sampling entropy over every completion generated for the
    step, the groups dynamic sampling drops included, against TRL's own forward over each round's completions (the
    policy does not move within a step); with no selection (grpo) it is `entropy/sampling_mean`."""
    rounds: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    score = EAPOTrainer._score

    def scored(self, inputs):
        output = score(self, inputs)
        ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        with torch.no_grad():
            _, entropy, _ = GRPOTrainer._get_per_token_logps_and_entropies(
                self, self.model, ids, mask, output["completion_ids"].shape[1], compute_entropy=True
            )
        rounds.append((self.state.global_step, entropy, output["completion_mask"].bool()))
        return output

    monkeypatch.setattr(EAPOTrainer, "_score", scored)
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, method=method, max_steps=3))
    trainer = EAPOTrainer(model=tiny_model(len(TOKENIZER)), reward_funcs=prompt_reward, args=args,
                          train_dataset=tiny_dataset(), processing_class=TOKENIZER)  # fmt: skip
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3
    for entry in logs:
        step = [(h, m) for g, h, m in rounds if g == entry["step"] - 1]
        expected = sum(float(h[m].sum()) for h, m in step) / sum(int(m.sum()) for _, m in step)
        assert entry["entropy/generated_mean"] == pytest.approx(expected, rel=1e-5)  # the kept groups: 3e-4 off
        if method == "grpo":
            assert len(step) == 1 and entry["entropy/generated_mean"] == pytest.approx(entry["entropy/sampling_mean"],
                                                                                        rel=1e-4)  # fmt: skip
    if method == "dapo":  # groups of prompts '0'..'3' carry no signal: dropped, then drawn again
        assert any(entry["dynamic_sampling/rounds"] > 1 for entry in logs)
        assert len(rounds) == sum(entry["dynamic_sampling/rounds"] for entry in logs)


def test_plain_grpo_config_is_rejected_with_a_clear_message(tmp_path):
    args = GRPOConfig(**cpu_config_kwargs(tmp_path))
    with pytest.raises(TypeError, match="EAPOTrainer needs an EAPOConfig"):
        EAPOTrainer(model=tiny_model(len(TOKENIZER)), reward_funcs=digit_reward, args=args)


@pytest.mark.parametrize("dynamic_sampling", [False, True])
def test_entropy_comes_from_trls_own_old_logps_forward(dynamic_sampling, tmp_path, monkeypatch):
    # num_iterations=2: TRL runs its own no-grad forward for log pi_old; EAPO must reuse it, not add one.
    calls = []
    original = GRPOTrainer._get_per_token_logps_and_entropies

    def counting(self, *args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GRPOTrainer, "_get_per_token_logps_and_entropies", counting)
    trainer, delta = _train(
        EAPOTrainer,
        EAPOConfig,
        tmp_path,
        method="eapo",
        num_iterations=2,
        max_steps=2,
        dynamic_sampling=dynamic_sampling,
    )
    generations = 1 if not dynamic_sampling else trainer.state.log_history[0]["dynamic_sampling/rounds"]
    assert calls.count(False) == generations  # one no-grad forward per generation round: TRL's own
    assert calls.count(True) == 2  # the two loss forwards
    batch = trainer.last_rollout
    assert delta.abs().sum() > 0 and (batch.entropy[batch.mask.bool()] > 0).all()
    assert (batch.token_logps[batch.mask.bool()] < 0).all()


def tiny_moe(seed: int = 0):
    """A 2-layer Qwen2-MoE (4 experts, 2 per token) over the tiny tokenizer."""
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    torch.manual_seed(seed)
    config = Qwen2MoeConfig(
        vocab_size=len(TOKENIZER),
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=64,
        pad_token_id=TOKENIZER.pad_token_id,
        eos_token_id=TOKENIZER.eos_token_id,
        bos_token_id=TOKENIZER.eos_token_id,
        tie_word_embeddings=True,
    )
    return Qwen2MoeForCausalLM(config)


@pytest.mark.parametrize("method", ["kl_cov", "clip_cov"])
def test_token_loss_methods_keep_an_moe_models_load_balancing_loss(method, tmp_path):
    """Before (issue 28, point 5): `_compute_token_loss` never asked for the MoE auxiliary loss, so KL-Cov and
    Clip-Cov trained MoE models without TRL's load-balancing term. The first step's loss with coefficient c is
    the loss without it plus c * aux_loss (same model, same batch)."""
    losses, aux = {}, None
    for coef in (0.0, 0.5):
        trainer, _ = _train(
            EAPOTrainer, EAPOConfig, tmp_path / str(coef), tiny_moe(), method=method, max_steps=1,
            router_aux_loss_coef=coef,
        )  # fmt: skip
        (log,) = [e for e in trainer.state.log_history if "loss" in e]
        losses[coef] = log["loss"]
        aux = log.get("aux_loss", aux)
    assert aux is not None and aux > 0
    assert losses[0.5] == pytest.approx(losses[0.0] + 0.5 * aux, abs=1e-5)


def test_the_kept_batch_is_on_the_cpu_and_compact(tmp_path):
    """Before (issue 28, point 7): last_rollout, last_advantages and last_labels were the gathered (B, T) tensors
    on the training device (every GPU), labels int64 and mask float32."""
    trainer, _ = _train(EAPOTrainer, EAPOConfig, tmp_path, method="eapo", dynamic_sampling=False, max_steps=1)
    batch = trainer.last_rollout
    kept = {f: getattr(batch, f) for f in batch.__dataclass_fields__}
    kept.update(last_advantages=trainer.last_advantages, last_labels=trainer.last_labels)
    assert {name: t.device.type for name, t in kept.items()} == {name: "cpu" for name in kept}
    assert trainer.last_labels.dtype == batch.labels.dtype == torch.int8 and batch.mask.dtype == torch.bool
    assert trainer.last_advantages.dtype == batch.entropy.dtype == torch.float32
    assert ((trainer.last_labels >= 0) & (trainer.last_labels <= int(Quadrant.NONE))).all()


def test_the_type_error_hint_works_literally_and_keeps_the_preset(tmp_path):
    """Issue 26, point 6: the fix the TypeError suggests, run as written, keeps the user's fields and the preset."""
    import re

    args = GRPOConfig(**cpu_config_kwargs(tmp_path, learning_rate=3e-4))
    with pytest.raises(TypeError) as err:
        EAPOTrainer(model=tiny_model(len(TOKENIZER)), reward_funcs=digit_reward, args=args)
    snippet = re.search(r"`([^`]+)`", str(err.value)).group(1)
    config = eval(snippet, {"EAPOConfig": EAPOConfig, "args": args})  # noqa: S307 - the hint, as a user runs it
    assert config.method == "eapo" and config.epsilon_high == 0.28 and config.loss_type == "dapo"
    assert config.learning_rate == 3e-4 and config.num_generations == 4 and config.max_steps == 2
    assert config.applied_preset["epsilon_high"] == 0.28
    trainer = EAPOTrainer(model=tiny_model(len(TOKENIZER)), reward_funcs=digit_reward, args=config,
                          train_dataset=tiny_dataset(), processing_class=TOKENIZER)  # fmt: skip
    assert trainer.args.dynamic_sampling


def _rare_reward(completions, **kwargs):
    """Rarely 1 (most groups all 0, so dynamic sampling runs several rounds), and raises on completions starting
    with "1" (scored 0 and counted under reward_error_policy zero)."""
    if any(c.startswith("1") for c in completions):
        raise ValueError("no ones")
    return [1.0 if c.startswith("0") else 0.0 for c in completions]


def test_counts_are_not_averaged_over_dynamic_sampling_rounds(tmp_path):
    """Issue 26, point 10: rewards/invalid_count is the batch's count over all its rounds and completions/max_length
    a length, not their mean over rounds (which gave 28.2 and 11.33)."""
    trainer, _ = _train(EAPOTrainer, EAPOConfig, tmp_path, method="eapo", reward=_rare_reward, max_steps=3,
                        reward_error_policy="zero")  # fmt: skip
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert any(entry["dynamic_sampling/rounds"] > 1 for entry in logs)
    assert sum(entry["rewards/invalid_count"] for entry in logs) == trainer.invalid_rewards_total > 0
    for entry in logs:
        assert float(entry["completions/max_length"]).is_integer() and entry["completions/max_length"] <= 6
        assert float(entry["rewards/invalid_count"]).is_integer()


def test_a_method_that_departs_from_grpo_says_so_once(tmp_path, caplog):
    """Issue 26, point 7: method="eapo" says once what it changes compared with GRPO (dynamic sampling and its
    rounds, clip-higher, ...); grpo says nothing."""
    import logging

    from eapo.trainer import summary

    summary._SAID.clear()  # noqa: SLF001 - a fresh process's state
    with caplog.at_level(logging.WARNING):
        for method in ("eapo", "eapo", "grpo"):
            args = EAPOConfig(**cpu_config_kwargs(tmp_path, method=method))
            EAPOTrainer(model=tiny_model(len(TOKENIZER)), reward_funcs=digit_reward, args=args,
                        train_dataset=tiny_dataset(), processing_class=TOKENIZER)  # fmt: skip
    said = [r.getMessage() for r in caplog.records if "GRPOTrainer" in r.getMessage()]
    assert len(said) == 1, said
    for needle in ("method eapo (eapo_alpha 0.2, eapo_phi 2)", "dynamic sampling", "up to 8 generation rounds",
                   "clip [0.8, 1.28] (clip-higher)", "loss_type dapo"):  # fmt: skip
        assert needle in said[0], said[0]


def test_the_model_card_names_the_method_and_a_real_path(tmp_path):
    """Issue 26, point 11: not "trained with GRPO" and `pipeline(model="None")`."""
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, method="eapo"))
    trainer = EAPOTrainer(model=tiny_model(len(TOKENIZER)), reward_funcs=digit_reward, args=args,
                          train_dataset=tiny_dataset(), processing_class=TOKENIZER)  # fmt: skip
    trainer.create_model_card(model_name="run")
    card = (tmp_path / "README.md").read_text()
    assert 'model="None"' not in card and f'model="{tmp_path.resolve()}"' in card
    assert "trained with GRPO," not in card and "EAPOTrainer, method `eapo`" in card


def test_answer_metrics_of_a_batch_by_hand():
    """`answers/format_rate` and `answers/accuracy_formatted` of one process's completions: the shaping column is
    left out of correctness, an unscored (NaN) task reward counts as wrong, and the rows of another process are not
    this one's. Process 1 of 2, 4 completions each: rows 4-7 of the global rewards."""
    from collections import defaultdict
    from types import SimpleNamespace

    # columns: task reward, overlong penalty (shaping). Process 0's rows would all be correct and formatted.
    rewards = torch.tensor(
        [[1.0, 0.0]] * 4 + [[1.0, -0.5], [0.0, 0.0], [math.nan, 0.0], [1.0, 0.0]],
    )
    completions = ["answer: 3", "answer: 4", "answer: 5", "no answer"]  # the last correct but unformatted
    fake = SimpleNamespace(
        accelerator=SimpleNamespace(process_index=1),
        _shaping_columns=[1],
        answer_extractor=lambda text: text.split("answer: ")[1] if "answer: " in text else None,
        model=SimpleNamespace(training=True),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    EAPOTrainer._log_answer_metrics(fake, completions, rewards)
    assert fake._metrics["train"]["answers/format_rate"] == [3 / 4]
    assert fake._metrics["train"]["answers/accuracy_formatted"] == [1 / 3]  # row 4 right (penalty left out)
    fake.answer_extractor = lambda text: None
    EAPOTrainer._log_answer_metrics(fake, completions, rewards)
    assert fake._metrics["train"]["answers/format_rate"] == [3 / 4, 0.0]
    assert fake._metrics["train"]["answers/accuracy_formatted"] == [1 / 3]  # no formatted completion: not logged
