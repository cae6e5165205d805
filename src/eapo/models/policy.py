"""The policy of `eapo train`: a local model folder, its prompt format and an optional LoRA adapter.

Models load from local files only (`local_files_only=True`, safetensors only, no remote code unless
asked for): nothing is downloaded at run time. LoRA comes from TRL's `ModelConfig` flags
(`--use_peft --lora_r --lora_alpha --lora_dropout --lora_target_modules`) through TRL's `get_peft_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl import ModelConfig

from eapo.errors import PolicyError

PROMPT_FORMATS = ("auto", "chat", "text")


def load_policy(
    path: str | Path | None,
    trust_remote_code: bool = False,
    dtype: str | None = None,
    attn_implementation: str | None = None,
) -> tuple[Any, Any]:
    """`(model, tokenizer)` from a local causal-LM folder (default: the shipped tiny-world policy)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eapo.world import BASE_MODEL_DIR

    folder = Path(path) if path is not None else BASE_MODEL_DIR
    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    if dtype not in (None, "auto"):
        if not isinstance(getattr(torch, str(dtype), None), torch.dtype):
            raise PolicyError(f"dtype {dtype!r}: use auto, bfloat16, float16 or float32")
        kwargs["dtype"] = getattr(torch, dtype)
    elif dtype == "auto":
        kwargs["dtype"] = "auto"
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if (folder / "adapter_config.json").exists() and not (folder / "config.json").exists():
        return load_adapter(folder, trust_remote_code, **{k: v for k, v in kwargs.items() if k != "trust_remote_code"})
    if not (folder / "config.json").exists():
        raise PolicyError(
            f"cannot load a model from {folder}: no config.json there; run `eapo warmstart --output_dir {folder}` "
            "or pass a model folder"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyError(f"cannot load a model from {folder}: {first}") from None
    if tokenizer.pad_token is None:  # TRL pads generation batches; many base models ship no pad token
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_adapter(folder: Path, trust_remote_code: bool = False, **loading: Any) -> tuple[Any, Any]:
    """`(model, tokenizer)` of a LoRA run's `model/` folder: its base model (a local path recorded in
    `adapter_config.json`, loaded with `loading`: `dtype`, `attn_implementation`) with the adapter merged in."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    loading = {"local_files_only": True, **loading}
    try:
        model = AutoPeftModelForCausalLM.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=trust_remote_code, **loading
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyError(f"cannot load the LoRA adapter in {folder} with its base model: {first}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.merge_and_unload(), tokenizer


def conversational(tokenizer: Any, prompt_format: str) -> bool:
    """Whether prompts are message lists (`chat`) or plain text; `auto`: chat when the tokenizer has a template."""
    if prompt_format not in PROMPT_FORMATS:
        raise PolicyError(f"prompt_format {prompt_format!r}: use one of {', '.join(PROMPT_FORMATS)}")
    if prompt_format == "auto":
        return bool(getattr(tokenizer, "chat_template", None))
    if prompt_format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise PolicyError("prompt_format chat: the tokenizer has no chat template; use --prompt_format text")
    return prompt_format == "chat"


def peft_config(model_args: Any) -> Any:
    """A peft `LoraConfig` from TRL's `ModelConfig` LoRA flags, or None without `--use_peft`."""
    from trl import get_peft_config

    if getattr(model_args, "load_in_4bit", False) or getattr(model_args, "load_in_8bit", False):
        raise PolicyError("load_in_4bit/load_in_8bit are not supported by eapo train: load in bf16 with --dtype")
    modules = model_args.lora_target_modules
    if isinstance(modules, str) and "," in modules:  # "q_proj,v_proj" from a YAML list or a flag
        model_args.lora_target_modules = [m.strip() for m in modules.split(",") if m.strip()]
    return get_peft_config(model_args)


def prompt_text(tokenizer: Any, prompt: Any) -> str:
    """A prompt as the text the model is conditioned on (chat template applied to message lists)."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)


@dataclass
class ModelArguments(ModelConfig):
    """TRL's `ModelConfig` flags (`--dtype`, `--attn_implementation`, `--use_peft`, `--lora_*`) plus the prompt
    format (`--trust_remote_code` is GRPOConfig's)."""

    prompt_format: str = field(
        default="auto",
        metadata={
            "help": "chat: message lists through the chat template; text: plain text; auto: chat when the "
            "tokenizer has a chat template (instruct models), else text (base models)."
        },
    )


@dataclass
class Prepared:
    """Everything `eapo train` builds before training: policy, task (prompts formatted) and LoRA config."""

    model: Any
    tokenizer: Any
    task: Any  # eapo.tasks.registry.Task
    peft_config: Any
    dropped_long_prompts: int = 0


def drop_long_prompts(dataset: Any, tokenizer: Any, max_tokens: int) -> tuple[Any, int]:
    """`dataset` without the rows whose prompt is longer than `max_tokens` tokens, and how many were dropped."""
    lengths = [
        len(tokenizer(prompt_text(tokenizer, p), add_special_tokens=False)["input_ids"]) for p in dataset["prompt"]
    ]
    keep = [i for i, n in enumerate(lengths) if n <= max_tokens]
    return dataset.select(keep), len(lengths) - len(keep)


def render_prompts(task: Any, tokenizer: Any, prompt_format: str, system_prompt: str, train: bool = True) -> bool:
    """Put the task's held-out prompts (and its train prompts, unless `train` is False) in the form the policy
    is trained on, in place: chat messages when `prompt_format` resolves to chat for this tokenizer, with
    the task's system prompt (`system_prompt`: auto, none or the text). Returns whether they are chat. Chat
    prompts drop the task's `stop_strings` (a chat template ends the answer with its own end-of-turn token)."""
    from eapo.tasks.registry import system_prompt_for, with_prompts

    chat = conversational(tokenizer, prompt_format)
    if chat:
        task.stop_strings = ()
    system = system_prompt_for(task, system_prompt)
    task.heldout = with_prompts(task.heldout, system, chat)
    if train:
        task.train = with_prompts(task.train, system, chat)
    return chat


def prepare(run: Any, seed: int, trust_remote_code: bool = False, task: Any = None) -> Prepared:
    """Load the policy and the task of an `eapo train` run (`run`: its RunArguments; `task`: already loaded, or
    None to load it here); raises PolicyError/TaskError."""
    from eapo.tasks.registry import TaskError, load_run_task

    model, tokenizer = load_policy(
        run.model_path or run.model_name_or_path, trust_remote_code, run.dtype, run.attn_implementation
    )
    task = task if task is not None else load_run_task(run, seed)
    render_prompts(task, tokenizer, run.prompt_format, run.system_prompt)
    dropped = 0
    if run.max_prompt_length is not None:
        task.train, dropped = drop_long_prompts(task.train, tokenizer, run.max_prompt_length)
        if len(task.train) == 0:
            raise TaskError(f"every train prompt is longer than max_prompt_length={run.max_prompt_length} tokens")
    return Prepared(model, tokenizer, task, peft_config(run), dropped)
