"""Recipes (`recipes/*.yaml`) parse through `eapo train`'s own path into the paper's settings; the batch
arithmetic of TRL vs the paper; the evaluation recipe and `eapo evalsuite`; the accelerate configs."""

from __future__ import annotations

import pytest
import yaml

from eapo.cli.train import parse_args
from eapo.trainer.recipes import RECIPES_DIR, batch_layout, paper_batch_fields, recipe_path

# method.md section 9: (batch prompts, mini-batch prompts, G, steps, lr, prompt length, response length)
PAPER = {
    "qwen2.5-math-7b-eapo": (512, 32, 8, 220, 1e-6, 1024, 3072),
    "qwen2.5-math-7b-quadrants": (256, 32, 8, 120, 1e-6, 1024, 3072),
    "deepscaler-1.5b-eapo": (64, 32, 16, 900, 1e-6, 2048, 24576),
}


def test_paper_batch_mapping_on_8_gpus():
    fields = paper_batch_fields(512, 32, 8, 220, num_processes=8, per_device=8)
    assert fields == {"num_generations": 8, "generation_batch_size": 4096, "per_device_train_batch_size": 8,
                      "gradient_accumulation_steps": 4, "max_steps": 3520}  # fmt: skip
    assert paper_batch_fields(64, 32, 16, 900, num_processes=8, per_device=4)["gradient_accumulation_steps"] == 16
    with pytest.raises(ValueError, match="cannot be split"):
        paper_batch_fields(512, 32, 8, 220, num_processes=3, per_device=8)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_recipe_reproduces_the_paper(name, tmp_path):
    batch, mini, group, steps, lr, prompt_len, response_len = PAPER[name]
    config, run = parse_args(["--config", str(recipe_path(name)), "--output_dir", str(tmp_path)])
    assert config.method == "eapo" and (config.eapo_alpha, config.eapo_phi) == (0.2, 2.0)
    assert config.learning_rate == lr and config.beta == 0.0  # no KL
    assert (config.temperature, config.top_p) == (1.0, 0.95)
    assert config.max_completion_length == response_len and run.max_prompt_length == prompt_len
    assert config.num_generations == group and config.bf16 and config.use_vllm
    assert config.activation_checkpointing and config.gradient_checkpointing  # on, under either name (TRL's default)
    assert run.reward == "math" and run.model_path.startswith("/path/to/") and run.task.startswith("/path/to/")
    layout = batch_layout(config, num_processes=8)
    assert layout.prompts_per_generation == batch  # the paper's batch
    assert layout.completions_per_step == mini * group  # the paper's mini-batch
    assert layout.steps_per_generation == batch // mini
    assert config.max_steps == steps * batch // mini  # TRL counts optimizer steps
    per_device = config.per_device_train_batch_size
    expected = paper_batch_fields(batch, mini, group, steps, num_processes=8, per_device=per_device)
    assert {key: getattr(config, key) for key in expected} == expected


def test_7b_layout_numbers():
    config, _ = parse_args(["--config", str(recipe_path("qwen2.5-math-7b-eapo")), "--output_dir", "x"])
    layout = batch_layout(config, num_processes=8)
    assert (layout.prompts_per_generation, layout.completions_per_step) == (512, 256)
    assert (layout.steps_per_generation, layout.micro_steps_per_generation) == (16, 64)
    with pytest.raises(ValueError, match="adjust gradient_accumulation_steps"):
        batch_layout(config, num_processes=3)  # 8 * 3 * 4 = 96 does not divide 4096










@pytest.mark.parametrize(
    ("name", "kind", "stage"),
    [("ddp", "MULTI_GPU", None), ("zero2", "DEEPSPEED", 2), ("zero3", "DEEPSPEED", 3), ("fsdp", "FSDP", None),
     ("cpu-2proc", "MULTI_GPU", None)],
)  # fmt: skip
def test_accelerate_configs(name, kind, stage):
    config = yaml.safe_load((RECIPES_DIR / "accelerate" / f"{name}.yaml").read_text())
    assert config["distributed_type"] == kind
    assert config.get("deepspeed_config", {}).get("zero_stage") == stage
    assert config["num_processes"] == (2 if name == "cpu-2proc" else 8)


def test_tiny_stress_recipe_is_the_tiny_world_defaults_with_4x_lr_and_900_steps(tmp_path):
    """Only the learning rate and the steps differ from the tiny world's defaults; evaluation sized for pass@64."""
    from eapo.trainer.defaults import TINY_WORLD_DEFAULTS

    config, run = parse_args(["--config", str(recipe_path("tiny-stress")), "--output_dir", str(tmp_path)])
    default, _ = parse_args(["--output_dir", str(tmp_path)])
    assert config.learning_rate == 4 * TINY_WORLD_DEFAULTS["learning_rate"] == 2e-4 and config.max_steps == 900
    assert run.model_path is None and run.task == "countdown"  # the embedded tiny world
    assert (run.eval_problems, run.eval_k, run.heldout_eval_steps) == (200, 64, 100)
    differ = {k for k, v in config.to_dict().items() if default.to_dict().get(k) != v}
    assert differ <= {"learning_rate", "max_steps"}
