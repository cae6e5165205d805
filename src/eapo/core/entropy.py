"""Token entropy (docs/method.md section 2) and group entropy statistics (section 3).

Shapes: `B` completions, `T` completion positions, `V` vocabulary. A `mask` is `(B, T)` with 1 on valid
completion tokens and 0 on padding. `group_index` is `(B,)` ints: rows with the same value are the G
completions of one prompt.
"""

from __future__ import annotations

import torch

# Elements of one float32 work buffer per chunk. On CPU a small chunk stays in cache (1M floats = 4 MiB,
# measured about 4x faster than 16M at (4, 1024, 151936), benchmarks/entropy.py); on GPU larger chunks
# mean fewer kernel launches.
CPU_CHUNK_ELEMENTS = 1 << 20
GPU_CHUNK_ELEMENTS = 1 << 24


@torch.no_grad()
def token_entropy(
    logits: torch.Tensor,
    temperature: float = 1.0,
    chunk_elements: int | None = None,
) -> torch.Tensor:
    """Entropy `H_{i,t}` (nats) of the sampling distribution `softmax(logits / temperature)`.

    Args:
        logits: `(..., V)`, any float dtype. Not modified.
        temperature: the sampling temperature the logits are divided by (> 0).
        chunk_elements: rows are processed `chunk_elements // V` at a time in two reused float32
            buffers, so the extra memory is about `2 * chunk_elements * 4` bytes whatever the batch and
            vocabulary size. Default: 2**20 on CPU, 2**24 on GPU.

    Returns:
        `logits.shape[:-1]`, float32, no gradient (the entropy is a statistic, never a target).

    Equivalent to the naive `-(p * log p).sum(-1)` with `p = softmax(logits.float() / temperature)`,
    computed as `logsumexp(x) - sum(softmax(x) * x)` in float32 one chunk of rows at a time.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_elements is None:
        chunk_elements = CPU_CHUNK_ELEMENTS if logits.device.type == "cpu" else GPU_CHUNK_ELEMENTS
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    out = torch.empty(flat.shape[0], dtype=torch.float32, device=logits.device)
    rows = max(1, min(flat.shape[0], chunk_elements // max(vocab, 1)))
    # Two buffers allocated once: fresh chunk-sized allocations every iteration cost more than the math.
    x_buf = torch.empty(rows, vocab, dtype=torch.float32, device=logits.device)
    p_buf = torch.empty_like(x_buf)
    for start in range(0, flat.shape[0], rows):
        chunk = flat[start : start + rows]
        x, p = x_buf[: chunk.shape[0]], p_buf[: chunk.shape[0]]
        x.copy_(chunk)  # a float32 copy: the caller's logits stay intact
        if temperature != 1.0:
            x.div_(temperature)
        x.sub_(x.amax(dim=-1, keepdim=True))  # exp() cannot overflow, entropy is shift-invariant
        x.clamp_(min=torch.finfo(torch.float32).min)  # a -inf logit has p = 0 and adds 0, not 0 * -inf = NaN
        torch.exp(x, out=p)
        z = p.sum(dim=-1)
        # H = log Z - sum_v p_v x_v / Z   (with x already shifted)
        out[start : start + rows] = torch.log(z) - p.mul_(x).sum(dim=-1) / z
    return out.reshape(logits.shape[:-1])


def masked_entropy(entropy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`entropy` as float32 with 0 on padding, whatever padding held (NaN and inf included)."""
    return torch.where(mask.bool(), entropy.float(), torch.zeros((), dtype=torch.float32, device=entropy.device))


def group_ids(group_index: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Dense ids `0..K-1` for arbitrary group labels: `(B,)` long tensor and the number of groups K."""
    _, inverse = torch.unique(group_index, return_inverse=True)
    return inverse, int(inverse.max().item()) + 1 if inverse.numel() else 0


def row_entropy_moments(entropy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-row sums `[count, sum H, sum H^2]` over valid tokens: `(B, 3)` float64.

    Moments add up across any split of the rows, so group statistics built from them are the same
    however a group is spread over micro-batches or processes.
    """
    m = mask.to(torch.float64)
    h = masked_entropy(entropy, mask).to(torch.float64)
    return torch.stack([m.sum(-1), h.sum(-1), (h * h).sum(-1)], dim=-1)


def stats_from_moments(row_moments: torch.Tensor, group_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Group mean and (population) std of the entropy, broadcast back to rows: two `(B,)` float32.

    A group with no valid token gets mean 0 and std 0.
    """
    ids, num_groups = group_ids(group_index)
    sums = torch.zeros(num_groups, 3, dtype=torch.float64, device=row_moments.device)
    sums.index_add_(0, ids, row_moments)
    count = sums[:, 0].clamp(min=1.0)
    mean = sums[:, 1] / count
    var = (sums[:, 2] / count - mean * mean).clamp(min=0.0)  # population variance (ddof = 0)
    return mean[ids].float(), var.sqrt()[ids].float()


def group_entropy_stats(
    entropy: torch.Tensor, mask: torch.Tensor, group_index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`mu_H(q)` and `sigma_H(q)` of the group each row belongs to (docs/method.md section 3).

    Args:
        entropy: `(B, T)` token entropies `H_{i,t}`.
        mask: `(B, T)` valid-token mask.
        group_index: `(B,)` prompt id of each row.

    Returns:
        `(mean, std)`, each `(B,)` float32: the mean and population standard deviation (ddof = 0, so
        a group with a single valid token has std 0, not NaN) of `H` over all valid tokens of all
        completions of the row's prompt.
    """
    return stats_from_moments(row_entropy_moments(entropy, mask), group_index)


@torch.no_grad()
def entropy_and_token_logprob(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    temperature: float = 1.0,
    chunk_elements: int | None = None,
    buffers: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Entropy `H` and the log-probability of a chosen token under `softmax(logits / temperature)`.

    Args:
        logits: `(N, V)` next-token logits, any float dtype. Not modified.
        tokens: `(N,)` token ids, one per row (the sampled token `o_t`).
        temperature: the sampling temperature the logits are divided by (> 0).
        chunk_elements: as in `token_entropy`: rows are processed `chunk_elements // V` at a time in
            two float32 buffers.
        buffers: a list that keeps those two buffers between calls (empty at first; refilled when the
            vocabulary, device or row count changes). A caller that runs once per decoding step passes the
            same list every step, so the buffers are allocated once: allocating and freeing megabyte
            buffers every step fragments the CPU heap (glibc), and the process' resident memory grows.

    Returns:
        `(H, log_p)`, each `(N,)` float32, no gradient. `H` equals `token_entropy(logits, temperature)`
        and `log_p` equals `log_softmax(logits.float() / temperature)[n, tokens[n]]`, both computed in
        one pass over the logits.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_elements is None:
        chunk_elements = CPU_CHUNK_ELEMENTS if logits.device.type == "cpu" else GPU_CHUNK_ELEMENTS
    n, vocab = logits.shape
    entropy = torch.empty(n, dtype=torch.float32, device=logits.device)
    log_p = torch.empty(n, dtype=torch.float32, device=logits.device)
    rows = max(1, min(n, chunk_elements // max(vocab, 1)))
    if buffers is not None and buffers and buffers[0].shape == (rows, vocab) and buffers[0].device == logits.device:
        x_buf, p_buf = buffers
    else:
        x_buf = torch.empty(rows, vocab, dtype=torch.float32, device=logits.device)
        p_buf = torch.empty_like(x_buf)
        if buffers is not None:
            buffers[:] = [x_buf, p_buf]
    for start in range(0, n, rows):
        chunk = logits[start : start + rows]
        x, p = x_buf[: chunk.shape[0]], p_buf[: chunk.shape[0]]
        # Called at every decoding step, so fewer passes over (rows, V) than `token_entropy`: shift while
        # copying (float32 input), divide after the shift ((l - max l) / T is a shift of l / T), one dot.
        if chunk.dtype == torch.float32:
            torch.sub(chunk, chunk.amax(dim=-1, keepdim=True), out=x)
        else:
            x.copy_(chunk)
            x.sub_(x.amax(dim=-1, keepdim=True))
        if temperature != 1.0:
            x.div_(temperature)
        x.clamp_(min=torch.finfo(torch.float32).min)
        torch.exp(x, out=p)
        z = p.sum(dim=-1)
        log_z = torch.log(z)
        picked = x.gather(1, tokens[start : start + rows].view(-1, 1).to(x.device)).squeeze(1)
        log_p[start : start + rows] = picked - log_z
        entropy[start : start + rows] = log_z - torch.linalg.vecdot(p, x) / z
    return entropy, log_p
