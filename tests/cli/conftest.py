"""Running the learned toy model (tests/conftest.py) through nmt-translate."""

import pytest


@pytest.fixture
def translate_first(learned_run, run_cli):
    """translate_first(n, *overrides, cwd=None) -> (nmt-translate's lines for the learned run's
    first n test sources, from its best checkpoint; the lines the run itself wrote for them)."""
    run_dir, _ = learned_run

    def translate(n: int, *overrides: str, cwd=None) -> tuple[list[str], list[str]]:
        sources = (run_dir / "test.src").read_text().splitlines()[:n]
        checkpoint = f"checkpoint={run_dir}/checkpoints/best.pt"
        proc = run_cli(
            "translate", checkpoint, *overrides, input="\n".join(sources) + "\n", cwd=cwd
        )
        return proc.stdout.splitlines(), (run_dir / "test.hyp").read_text().splitlines()[:n]

    return translate
