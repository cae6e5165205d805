"""Token credit: the pure estimator against hand-computed and closed-form values, the branching estimator on a
bigram policy whose true credit is known in closed form, the histogram proxy, and `eapo credit` end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from eapo.analysis.credit import RewardTask, choose_positions, estimate_credit, sample_with_entropy
from eapo.core.credit import (
    binary_entropy,
    bucket_credit,
    categorical_entropy,
    credit_with_interval,
    histogram_mutual_information,
)
from eapo.world import build_tokenizer


def h_b(p: float) -> float:
    return -sum(x * math.log(x) for x in (p, 1 - p) if x > 0)


def hindsight_credit(pi: list[float], p: list[float]) -> float:
    """Slow reference, the other form of section 5: `E_r KL(pi_hs(. | r) || pi)`, `pi_hs(v | r) ∝ pi_v p(r | v)`."""
    total = 0.0
    for r in (0, 1):
        joint = [pv * (pr if r else 1 - pr) for pv, pr in zip(pi, p, strict=True)]
        p_r = sum(joint)
        total += sum(j * math.log((j / p_r) / pv) for j, pv in zip(joint, pi, strict=True) if j > 0)
    return total


def test_binary_entropy_in_nats():
    values = binary_entropy(torch.tensor([0.0, 0.5, 1.0, 0.2], dtype=torch.float64))
    assert values.tolist() == pytest.approx([0.0, math.log(2), 0.0, h_b(0.2)], abs=1e-12)


def test_bucket_credit_hand_computed():
    # p = 0.25 * 0.8 + 0.75 * 0.4 = 0.5
    expected = math.log(2) - 0.25 * h_b(0.8) - 0.75 * h_b(0.4)  # 0.6931 - 0.25 * 0.5004 - 0.75 * 0.6730
    pi, p = torch.tensor([0.25, 0.75], dtype=torch.float64), torch.tensor([0.8, 0.4], dtype=torch.float64)
    assert float(bucket_credit(pi, p)) == pytest.approx(expected, 1e-12)
    assert expected == pytest.approx(0.0632, abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_bucket_credit_matches_hindsight_kl_and_the_bound(seed):
    gen = torch.Generator().manual_seed(seed)
    pi = torch.rand(4, generator=gen, dtype=torch.float64)
    pi /= pi.sum()
    p = torch.rand(4, generator=gen, dtype=torch.float64)
    credit = float(bucket_credit(pi, p))
    assert credit == pytest.approx(hindsight_credit(pi.tolist(), p.tolist()), rel=1e-10)
    assert 0 < credit <= min(float(categorical_entropy(pi)), math.log(2))


def test_credit_zero_when_reward_ignores_the_token_and_full_when_it_decides_it():
    pi = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    assert float(bucket_credit(pi, torch.full((3,), 0.37))) == pytest.approx(0.0, abs=1e-15)
    # reward decided by the token: I = H_b(p) = H_b(0.5 + 0.2); with two buckets I = H(pi), the bound is tight
    decided = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    assert float(bucket_credit(pi, decided)) == pytest.approx(h_b(0.7), 1e-12)
    two = torch.tensor([0.9, 0.1], dtype=torch.float64)
    assert float(bucket_credit(two, torch.tensor([0.0, 1.0]))) == pytest.approx(float(categorical_entropy(two)), 1e-12)


def test_interval_is_ordered_clamped_seeded_and_exact_when_deterministic():
    pi = torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.6, 0.4]], dtype=torch.float64)
    successes = torch.tensor([[32.0, 0.0], [10.0, 10.0], [20.0, 5.0]])
    trials = torch.full((3, 2), 32.0)
    est = credit_with_interval(pi, successes, trials, seed=1)
    assert float(est.credit[0]) == pytest.approx(h_b(0.7), 1e-12)  # reward decided by the token
    assert float(est.credit[1]) == 0.0  # same success rate in both buckets
    ceiling = categorical_entropy(pi)
    assert bool((est.low >= 0).all()) and bool((est.high <= ceiling + 1e-12).all())
    assert bool((est.low <= est.credit_bc).all()) and bool((est.credit_bc <= est.high).all())
    assert float(est.low[1]) == 0.0 and float(est.high[1]) > 0  # 0 is in the interval, which still has width
    again = credit_with_interval(pi, successes, trials, seed=1)
    assert torch.equal(est.low, again.low) and torch.equal(est.high, again.high)


def test_interval_rejects_bad_counts():
    pi = torch.tensor([[0.5, 0.5]])
    with pytest.raises(ValueError, match="trials = 0"):
        credit_with_interval(pi, torch.tensor([[1.0, 0.0]]), torch.tensor([[4.0, 0.0]]))
    with pytest.raises(ValueError, match="successes"):
        credit_with_interval(pi, torch.tensor([[5.0, 0.0]]), torch.tensor([[4.0, 4.0]]))


@pytest.mark.parametrize(("pi", "p"), [([0.5, 0.3, 0.2], [0.8, 0.3, 0.5]), ([0.6, 0.25, 0.15], [0.5, 0.4, 0.45])])
def test_interval_coverage_and_bias_correction(pi, p):
    """300 simulated states, 32 continuations per bucket: the 95% interval covers the true credit >= 90% of
    the time, and the bias correction moves the mean estimate towards it."""
    pi_t, p_t = torch.tensor(pi, dtype=torch.float64), torch.tensor(p, dtype=torch.float64)
    truth = float(bucket_credit(pi_t, p_t))
    trials = torch.full((300, 3), 32.0, dtype=torch.float64)
    successes = torch.binomial(trials, p_t.expand(300, 3).contiguous(), generator=torch.Generator().manual_seed(7))
    est = credit_with_interval(pi_t.expand(300, 3), successes, trials, replicates=1000, seed=3)
    coverage = float(((est.low <= truth) & (truth <= est.high)).double().mean())
    assert coverage >= 0.9
    assert abs(float(est.credit_bc.mean()) - truth) < abs(float(est.credit.mean()) - truth)


def test_histogram_proxy_hand_computed():
    entropy = torch.tensor([0.1, 0.2, 0.3, 0.4, 1.1, 1.2, 1.3, 1.4])
    # low-entropy bin: 3 correct, 1 wrong; high: 1 correct, 3 wrong -> I = log 2 - H_b(1/4)
    correct = torch.tensor([1, 1, 1, 0, 1, 0, 0, 0], dtype=torch.bool)
    for binning in ("uniform", "quantile"):
        value = histogram_mutual_information(entropy, correct, bins=2, binning=binning)
        assert value == pytest.approx(math.log(2) - h_b(0.25), 1e-12)
    assert histogram_mutual_information(entropy, entropy > 1, bins=2) == pytest.approx(math.log(2), 1e-12)
    assert histogram_mutual_information(entropy, torch.tensor([1, 0] * 4, dtype=torch.bool), bins=2) == 0.0


# A bigram Qwen2: the next-token distribution depends only on the last token, so every true credit is
# known in closed form. From the prompt "=": "1" 0.5, "2" 0.2, "3", "4", "5" 0.1 each; after "1" the next
# token is "+" with 0.9, after "2" with 0.2, after "3"/"4"/"5" with 0.5 (else "-"); then EOS. Reward: the
# second character is "+".
FIRST = {"1": 0.5, "2": 0.2, "3": 0.1, "4": 0.1, "5": 0.1}
PLUS = {"1": 0.9, "2": 0.2, "3": 0.5, "4": 0.5, "5": 0.5}


def bigram_policy():
    tokenizer = build_tokenizer()
    vocab, hidden = len(tokenizer), 32
    config = Qwen2Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=16, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).eval()
    table = torch.full((vocab, vocab), -60.0)  # log-probabilities table[prev, next]
    ids = tokenizer.convert_tokens_to_ids
    for first, prob in FIRST.items():
        table[ids("="), ids(first)] = math.log(prob)
        table[ids(first), ids("+")] = math.log(PLUS[first])
        table[ids(first), ids("-")] = math.log(1 - PLUS[first])
    for token in range(vocab):
        if table[token].max() < -1:  # "+", "-", ...: stop
            table[token, tokenizer.eos_token_id] = 0.0
    with torch.no_grad():
        layer = model.model.layers[0]
        layer.self_attn.o_proj.weight.zero_()  # the blocks add nothing: the residual is the embedding
        layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(vocab, hidden))  # RMSNorm maps it to sqrt(hidden) e_i
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, :vocab] = table.T / math.sqrt(hidden)  # logits = table[last token]
    return model, tokenizer


def plus_second(completions, **kwargs):
    return [1.0 if len(c) > 1 and c[1] == "+" else 0.0 for c in completions]


def test_branching_recovers_the_closed_form_credit():
    model, tokenizer = bigram_policy()
    task = RewardTask(["="], plus_second)
    torch.manual_seed(0)
    sample = sample_with_entropy(model, tokenizer, task, 1, max_completion_length=4)
    text = tokenizer.decode(sample.ids[0], skip_special_tokens=True)
    assert len(text) == 2 and text[0] in FIRST and text[1] in "+-"
    states = choose_positions(sample, 0, 0, torch.Generator())
    assert states == [(0, 0), (0, 1), (0, 2)]  # first token, second token, EOS
    # the first state five times: five independent estimates of one true credit
    records = estimate_credit(
        model, tokenizer, task, sample, [states[0]] * 4 + states, top_k=2, m=1024, max_completion_length=4
    )
    firsts, (second, stop) = records[:5], records[5:]

    pi, p = list(FIRST.values()), list(PLUS.values())
    truth = hindsight_credit(pi, p)  # the "other" tokens share p = 0.5, so the bucket credit is the token credit
    assert truth == pytest.approx(0.1829, abs=1e-4)
    top_pi = torch.tensor([0.5, 0.2], dtype=torch.float64) / 0.7
    covered = 0
    for first in firsts:
        assert first["entropy"] == pytest.approx(-sum(x * math.log(x) for x in pi), abs=1e-4)
        assert first["ci_high"] - first["ci_low"] < 0.08
        covered += first["ci_low"] <= truth <= first["ci_high"]
        # mis-specified: ignore the "other" bucket (renormalise pi over the top-k), from the same counts
        counts = [tuple(map(int, b.split(":")[2].split("/"))) for b in first["buckets"].split()]
        wrong = float(bucket_credit(top_pi, torch.tensor([s / n for s, n in counts[:2]], dtype=torch.float64)))
        assert wrong > first["ci_high"]  # about 0.236
    assert covered >= 4  # a 95% interval (measured coverage 27 of 30 seeds here)

    # the second token decides the reward: credit = H_b(p(+ | first)) = its entropy, the bound is tight
    tight = h_b(PLUS[text[0]])
    assert second["credit"] == pytest.approx(tight, abs=1e-6)
    assert second["entropy"] == pytest.approx(tight, abs=1e-4)
    assert second["ci_low"] <= tight <= second["ci_high"]
    assert stop["token"] == "<eos>" and stop["credit"] == 0.0 and stop["entropy"] < 1e-6
    assert all(r["within_bound"] and r["within_bound_ci"] for r in records)


def test_reward_must_be_binary():
    task = RewardTask(["="], lambda completions, **kw: [0.5] * len(completions))
    with pytest.raises(ValueError, match="binary reward"):
        task.success([0], ["1+"], [[1]])


def test_cli_end_to_end(tmp_path, capsys):
    from eapo.cli import main

    out = tmp_path / "credit"
    flags = ["--problems", "2", "--completions", "3", "--branch_completions", "1", "--positions", "3", "--m", "4"]
    assert main(["credit", *flags, "--bootstrap", "50", "--output_dir", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"credit.csv", "credit.json", "credit.png"}
    result = json.loads((out / "credit.json").read_text())
    rows = result["positions"]
    assert len(rows) == 2 * 3 == result["summary"]["positions"]
    header = (out / "credit.csv").read_text().splitlines()[0].split(",")
    for column in (
        "problem",
        "completion",
        "position",
        "token",
        "entropy",
        "credit",
        "ci_low",
        "ci_high",
        "within_bound",
    ):
        assert column in header
    assert all(0 <= r["ci_low"] <= r["credit_bc"] <= r["ci_high"] for r in rows)
    summary = result["summary"]
    assert summary["fraction_within_bound"] == 1.0 and summary["proxy_tokens"] > 6
    assert 0 <= summary["histogram_proxy_I_H_r"] <= math.log(2)
    assert "fraction_within_bound" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--m 1: use at least 2"):
        main(["credit", "--m", "1", "--output_dir", str(out)])


def test_cli_on_a_reasoning_gym_task(tmp_path):
    """`--task rg:NAME`: the task's own prompts and scorer; a binary reward from `--threshold`."""
    from eapo.cli import main
    from tiny import ascii_model_dir

    model = ascii_model_dir(tmp_path / "model")
    out = tmp_path / "credit"
    flags = ["--problems", "2", "--completions", "2", "--branch_completions", "1", "--positions", "2", "--m", "2"]
    task = ["--task", "rg:basic_arithmetic", "--system_prompt", "none", "--max_completion_length", "6"]
    task += ["--model_path", str(model), "--bootstrap", "20", "--output_dir", str(out)]
    assert main(["credit", *flags, *task]) == 0
    result = json.loads((out / "credit.json").read_text())
    assert result["settings"]["task"] == "rg:basic_arithmetic" and result["settings"]["max_completion_length"] == 6
    assert len(result["positions"]) == 2 * 2
    # An untrained policy over printable ASCII never writes a right <answer>: every credit is 0.
    assert all(r["credit"] == 0.0 for r in result["positions"])
    with pytest.raises(SystemExit, match="unknown reasoning-gym task 'nope'"):
        main(["credit", "--task", "rg:nope", "--model_path", str(model), "--output_dir", str(out)])
