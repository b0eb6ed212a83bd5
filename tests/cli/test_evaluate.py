"""nmt-evaluate end to end on the toy model: another split and other data, with beam search."""

import json


def test_evaluate_another_split_and_data_with_beam(learned_run, run_cli, tmp_path):
    run_dir, _ = learned_run
    run_cli(
        "evaluate",
        f"checkpoint={run_dir}/checkpoints/best.pt",
        "split=dev",
        "data=toy_reverse",
        "data.corpus.n_dev=15",
        "decode=beam",
        "decode.beam_size=3",
        f"hydra.run.dir={tmp_path}/eval",
    )
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["split"] == "dev" and results["decode"]["beam_size"] == 3
    assert len((tmp_path / "eval" / "dev.hyp").read_text().splitlines()) == 15
    assert results["bleu"] > 50
    assert not (run_dir / "dev.hyp").exists()  # nothing written into the training run
