"""Decoding: greedy search, and batched beam search (every sentence and beam of a batch in one
tensor program; finished sentences leave the batch). Greedy is the beam_size = 1 path."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from nmt.config import DecodeConfig
from nmt.data.specials import BOS, EOS
from nmt.devices import autocast
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq


@dataclasses.dataclass
class Hypothesis:
    """A decoded sentence.

    Attributes:
        ids: target ids without <s> and </s>.
        attention: (len(ids) + 1, S) weights of every output step, </s> included.
        score: log-probability, length-normalised as the search was asked to.
    """

    ids: list[int]
    attention: Tensor
    score: float = 0.0


def max_lengths(src_mask: Tensor, ratio: float, extra: int) -> Tensor:
    """(B,) longest allowed output per sentence: ratio x source length + extra."""
    return (src_mask.sum(-1).float() * ratio).long() + extra


def normalize_score(logprob: float, length: int, penalty: str, alpha: float) -> float:
    """Length normalisation of a finished hypothesis of `length` tokens (</s> included):
    none, average (Bahdanau's GroundHog --normalize) or gnmt ((5 + |Y|) / 6)^alpha (Wu et al.)."""
    if penalty == "none":
        return logprob
    if penalty == "average":
        return logprob / length
    if penalty == "gnmt":
        return logprob / ((5 + length) / 6) ** alpha
    raise ValueError(f"decode.length_penalty: '{penalty}' is not one of none, average, gnmt")


def select(enc: EncoderOutput, keys: Tensor, rows: Tensor) -> tuple[EncoderOutput, Tensor]:
    """The encoder memory of batch rows `rows` (final states are only read by decoder.start)."""
    ids = None if enc.src_ids is None else enc.src_ids[rows]
    enc = dataclasses.replace(enc, memory=enc.memory[rows], mask=enc.mask[rows], src_ids=ids)
    return enc, keys[rows]


def start_search(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, rows: int = 1
) -> tuple[EncoderOutput, Tensor, tuple]:
    """The encoder output, the attention's projected keys and the decoder's first state,
    repeated `rows` times a sentence (the memory stays one row a sentence: attend reads it so)."""
    enc = model.encode(src, src_mask)
    keys = model.decoder.attention.project_keys(enc.memory)
    state = model.decoder.start(enc)
    if rows > 1:
        state = tuple(s.repeat_interleave(rows, dim=0) for s in state)
    return enc, keys, state


def step(
    model: Seq2Seq,
    y: Tensor,
    state: tuple,
    enc: EncoderOutput,
    keys: Tensor,
    t: int,
    precision: str,
) -> tuple[Tensor, tuple, Tensor]:
    """One decoder step and the output layer, their products in `precision`: y (nb,) ->
    log-probabilities (nb, V) in float32, the new state, attention weights (nb, S)."""
    with autocast(precision, y.device):
        features, new_state, alpha = model.decoder.step(y, state, enc, keys, t)
        logits = model.generator(features)
    return model.log_probs(logits, features, alpha, y, enc), new_state, alpha


@torch.inference_mode()
def greedy(
    model: Seq2Seq,
    src: Tensor,
    src_mask: Tensor,
    *,
    max_len_ratio: float,
    max_len_extra: int,
    precision: str = "float32",
) -> list[Hypothesis]:
    """Greedy search: the arg-max token at every step, until </s> or the length limit. A
    sentence leaves the batch once it has ended, so the step cost follows the sentences still
    being decoded.

    Args:
        src: (B, S) source ids; src_mask: (B, S) bool.
        precision: of the decoder steps' and the output layer's products (`step`).
    """
    enc, keys, state = start_search(model, src, src_mask)
    (B, S), device = src.shape, src.device
    limit = max_lengths(src_mask, max_len_ratio, max_len_extra)
    steps = int(limit.max()) + 1
    tokens = torch.full((B, steps), EOS, dtype=torch.long, device=device)
    weights = torch.zeros(B, steps, S, device=device)
    score = torch.zeros(B, device=device)
    rows = torch.arange(B, device=device)  # (nb,) the sentence of each row still decoding
    y = torch.full((B,), BOS, dtype=torch.long, device=device)
    for t in range(steps):
        logp, state, alpha = step(model, y, state, enc, keys, t, precision)  # logp (nb, V)
        best, y = model.best_tokens(logp)
        forced = t >= limit[rows]  # </s> is forced, and free, at the length limit
        y = torch.where(forced, torch.full_like(y, EOS), y)
        score[rows] += torch.where(forced, torch.zeros_like(best), best)
        tokens[rows, t] = y
        weights[rows, t] = alpha
        going = y.ne(EOS)
        if not bool(going.all()):
            keep = going.nonzero().squeeze(1)  # (nb',)
            if keep.numel() == 0:
                break
            rows, y = rows[keep], y[keep]
            state = tuple(s[keep] for s in state)
            enc, keys = select(enc, keys, keep)
    hyps = []
    for b, seq in enumerate(tokens.tolist()):
        n = seq.index(EOS)
        hyps.append(
            Hypothesis(ids=seq[:n], attention=weights[b, : n + 1].cpu(), score=float(score[b]))
        )
    return hyps


@torch.inference_mode()
def beam_search(
    model: Seq2Seq,
    src: Tensor,
    src_mask: Tensor,
    *,
    beam_size: int,
    max_len_ratio: float,
    max_len_extra: int,
    length_penalty: str = "none",
    alpha: float = 1.0,
    n_best: int = 1,
    stop: str = "k_finished",
    precision: str = "float32",
) -> list[list[Hypothesis]]:
    """Batched beam search. Rows are (sentence, beam) pairs, B x K of them; each step takes the
    2K best extensions of a sentence's beams, finishes those ending in </s> among the K best, and
    continues with the K best others. A sentence is done when it reaches its length limit (where
    </s> is forced) or, as `stop` says, when it has K finished hypotheses (k_finished) or when
    its best extension of the step ends in </s> and n_best have finished (best_finished,
    OpenNMT-py's rule: fewer steps, and a search that explores less). Done sentences leave the
    batch. `precision` is that of the decoder steps' and the output layer's products (`step`).

    Returns:
        for each sentence, its `n_best` hypotheses, best first by normalised score.
    """
    K, device, B = beam_size, src.device, src.size(0)
    enc, keys, state = start_search(model, src, src_mask, rows=K)  # state: (B K, ...)
    limit = max_lengths(src_mask, max_len_ratio, max_len_extra)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    history = torch.empty(B * K, 0, dtype=torch.long, device=device)
    y = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    alive = list(range(B))  # the sentence of each row group
    # a finished hypothesis: (ids, normalised score, step t it ended at, row it extended)
    finished: list[list[tuple[list[int], float, int, int]]] = [[] for _ in range(B)]
    alphas: list[Tensor] = []  # step t's attention weights, (rows of step t, S)
    parents: list[Tensor] = []  # step t+1's rows -> the step-t rows they extend
    for t in range(int(limit.max()) + 1):
        logp, state, alpha_t = step(model, y, state, enc, keys, t, precision)  # logp (nb K, V)
        alphas.append(alpha_t)
        nb = len(alive)
        force_end(logp, (t >= limit[alive]).repeat_interleave(K))
        top, token, origin = extensions(model, scores, logp, K)  # (nb, 2K) each
        ends = token.eq(EOS) & top.isfinite()
        for j, r in ends[:, :K].nonzero().tolist():  # the ends among the K best
            row = int(origin[j, r])
            ids = history[row].tolist()
            score = normalize_score(float(top[j, r]), len(ids) + 1, length_penalty, alpha)
            finished[alive[j]].append((ids, score, t, row))
        scores, y, chosen = going_on(top, token, origin, ends, K)
        history = torch.cat([history[chosen], y.unsqueeze(1)], dim=1)
        state = tuple(s[chosen] for s in state)
        early = ends[:, 0].tolist() if stop == "best_finished" else [False] * nb
        going = still_going(alive, finished, limit, t, early, K, n_best)
        if len(going) < nb:
            group = torch.tensor(going, dtype=torch.long, device=device)
            rows = (group.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)
            alive = [alive[j] for j in going]
            scores, y, history, chosen = scores[group], y[rows], history[rows], chosen[rows]
            state = tuple(s[rows] for s in state)
            enc, keys = select(enc, keys, group)
        parents.append(chosen)
        if not alive:
            break
    return best_hypotheses(finished, alphas, parents, n_best)


def extensions(model: Seq2Seq, scores: Tensor, logp: Tensor, K: int) -> tuple[Tensor, ...]:
    """The 2K best extensions of each sentence's K beams: scores (nb, K) of the beams and logp
    (nb K, V) of their next tokens -> the extensions' scores, tokens and the rows (of nb K)
    they extend, (nb, 2K) each, best first."""
    nb, V = scores.size(0), logp.size(-1)
    candidates = (scores.unsqueeze(-1) + logp.view(nb, K, V)).view(nb, K * V)
    top, index = model.best_candidates(candidates, 2 * K)
    origin = index // V + torch.arange(nb, device=scores.device).unsqueeze(1) * K
    return top, index % V, origin


def going_on(
    top: Tensor, token: Tensor, origin: Tensor, ends: Tensor, K: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The K best extensions that do not end in </s> (`ends`): their scores (nb, K), tokens
    (nb K,) and the rows they extend (nb K,)."""
    rank = ends.float() * 2 * K + torch.arange(2 * K, device=top.device)  # </s> ones last
    keep = rank.argsort(dim=-1)[:, :K]
    return top.gather(1, keep), token.gather(1, keep).view(-1), origin.gather(1, keep).view(-1)


def best_hypotheses(
    finished: list[list[tuple]], alphas: list[Tensor], parents: list[Tensor], n_best: int
) -> list[list[Hypothesis]]:
    """Each sentence's n_best finished hypotheses, best first, with their attention weights
    followed back through the beams (`backtrack`)."""
    best = [sorted(hyps, key=lambda h: -h[1])[:n_best] for hyps in finished]
    weights = iter(backtrack(alphas, parents, [(t, row) for hyps in best for *_, t, row in hyps]))
    return [[Hypothesis(ids, next(weights), score) for ids, score, *_ in hyps] for hyps in best]


def force_end(logp: Tensor, forced: Tensor) -> None:
    """Give the rows `forced` (nb K,) of logp (nb K, V) only </s>, free: the length limit."""
    if bool(forced.any()):  # the masked writes scan all of logp: 0.2 ms a step for nothing
        logp[forced] = float("-inf")
        logp[forced, EOS] = 0.0


def still_going(
    alive: list[int], finished: list, limit: Tensor, t: int, early: list[bool], K: int, n_best: int
) -> list[int]:
    """The row groups whose sentence goes on after step t: fewer than K finished, below its
    length limit, and, under best_finished, not ended by its best extension with n_best
    finished."""
    return [
        j
        for j, b in enumerate(alive)
        if len(finished[b]) < K
        and t < int(limit[b])
        and not (early[j] and len(finished[b]) >= n_best)
    ]


def backtrack(alphas: list[Tensor], parents: list[Tensor], ends: list[tuple[int, int]]) -> list:
    """The attention weights of hypotheses that ended at (step t, row r): (t + 1, S) each,
    followed back through the rows each step's rows extend, all hypotheses at once."""
    if not ends:
        return []
    device = alphas[0].device
    t_end = torch.tensor([t for t, _ in ends], device=device)  # (M,)
    row_end = torch.tensor([r for _, r in ends], device=device)  # (M,)
    T = int(t_end.max())
    out = alphas[0].new_zeros(len(ends), T + 1, alphas[0].size(-1))  # (M, T + 1, S)
    row = row_end.clone()  # each hypothesis's row at step s (meaningless before it starts)
    for s in range(T, -1, -1):
        if s < T:
            back = parents[s][row.clamp(max=parents[s].numel() - 1)]
            row = torch.where(t_end > s, back, row)
        row = torch.where(t_end == s, row_end, row)
        active = t_end >= s
        out[active, s] = alphas[s][row[active]]
    return [out[i, : t + 1].cpu() for i, (t, _) in enumerate(ends)]


def decode(model: Seq2Seq, src: Tensor, src_mask: Tensor, cfg: DecodeConfig) -> list[list]:
    """Search as `cfg` says: greedy for beam_size 1, beam search otherwise; n-best lists."""
    options = dict(  # what both searches take
        max_len_ratio=cfg.max_len_ratio, max_len_extra=cfg.max_len_extra, precision=cfg.precision
    )
    if cfg.beam_size == 1:
        return [[h] for h in greedy(model, src, src_mask, **options)]
    return beam_search(
        model,
        src,
        src_mask,
        beam_size=cfg.beam_size,
        length_penalty=cfg.length_penalty,
        alpha=cfg.alpha,
        n_best=cfg.n_best,
        stop=cfg.stop,
        **options,
    )
