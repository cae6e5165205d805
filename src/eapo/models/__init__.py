"""Local model folders: loading a policy (and its LoRA adapter) for training, evaluation and analysis (`policy`);
making one from a GGUF file (`gguf.convert_gguf`) or for SmolLM2-135M-Instruct (`gguf.fetch_smollm2`)."""
