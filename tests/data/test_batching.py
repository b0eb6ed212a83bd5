import random

import torch

from nmt.data.batching import epoch_batches, make_batch, sorted_batches
from nmt.data.specials import BOS, EOS, PAD

rng = random.Random(0)
SRC = [[rng.randrange(4, 50) for _ in range(rng.randint(1, 30))] + [EOS] for _ in range(500)]
TGT = [
    [BOS] + [rng.randrange(4, 50) for _ in range(rng.randint(1, 30))] + [EOS] for _ in range(500)
]


def test_masks_mark_exactly_the_real_tokens():
    batch = make_batch(SRC, TGT, [3, 7, 11])
    for row, i in enumerate([3, 7, 11]):
        assert int(batch.src_mask[row].sum()) == len(SRC[i])
        assert batch.src[row, : len(SRC[i])].tolist() == SRC[i]
        assert (batch.src[row, len(SRC[i]) :] == PAD).all()
        assert int(batch.tgt_mask[row].sum()) == len(TGT[i]) - 1
        assert batch.tgt_in[row, : len(TGT[i]) - 1].tolist() == TGT[i][:-1]
        assert batch.tgt_out[row, : len(TGT[i]) - 1].tolist() == TGT[i][1:]
    assert torch.equal(batch.src_mask, batch.src.ne(PAD))
    assert batch.n_tokens == sum(len(TGT[i]) - 1 for i in [3, 7, 11])


def lengths():
    return [len(s) for s in SRC], [len(t) for t in TGT]


def test_an_epoch_covers_every_example_once_and_is_fixed_by_seed_and_epoch():
    src_lens, tgt_lens = lengths()
    kw = dict(batch_size=32, batch_tokens=None, pool=4)
    first = epoch_batches(src_lens, tgt_lens, seed=1, epoch=0, **kw)
    assert sorted(i for b in first for i in b) == list(range(500))
    assert first == epoch_batches(src_lens, tgt_lens, seed=1, epoch=0, **kw)
    assert first != epoch_batches(src_lens, tgt_lens, seed=1, epoch=1, **kw)
    assert first != epoch_batches(src_lens, tgt_lens, seed=2, epoch=0, **kw)


def test_bucketing_reduces_target_padding():
    src_lens, tgt_lens = lengths()

    def padding(batches):  # of the target side, which the decoder steps through
        real = sum(tgt_lens[i] for b in batches for i in b)
        padded = sum(len(b) * max(tgt_lens[i] for i in b) for b in batches)
        return 1 - real / padded

    random_batches = epoch_batches(
        src_lens, tgt_lens, batch_size=32, batch_tokens=None, pool=1, seed=0, epoch=0
    )
    bucketed = epoch_batches(
        src_lens, tgt_lens, batch_size=32, batch_tokens=None, pool=16, seed=0, epoch=0
    )
    assert padding(bucketed) < padding(random_batches) / 2


def test_token_budget_bounds_every_batch():
    src_lens, tgt_lens = lengths()
    batches = epoch_batches(
        src_lens, tgt_lens, batch_size=32, batch_tokens=200, pool=8, seed=0, epoch=0
    )
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        longest = max(max(src_lens[i], tgt_lens[i]) for i in b)
        assert len(b) * longest <= 200 or len(b) == 1


def test_sorted_batches_cover_all_longest_first():
    batches = sorted_batches([3, 9, 1, 5], 2)
    assert batches == [[1, 3], [0, 2]]
