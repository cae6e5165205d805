"""Local model folders: loading a policy (and its LoRA adapter) for training, evaluation and analysis (`policy`)."""
