"""A reproduction's plan: every row x seed of a paper file (configs/paper/NAME.yaml) as a `Job`,
one `nmt-train` run in its own directory OUT/ROW/seedS, with the overrides that make it. The
paper file decides the rows, their experiments and overrides at each scale; it may not decide
where a job runs or what it continues (PAPER_REFUSES)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nmt.errors import NmtError


@dataclasses.dataclass(frozen=True)
class Job:
    """One row x seed of a reproduction and the `nmt-train` overrides that make it."""

    row: str
    label: str
    seed: int
    directory: Path
    overrides: tuple[str, ...]
    allow_targets: tuple[str, ...] = ()  # plug-in modules its saved configs may build (resume)

    @property
    def name(self) -> str:
        return f"{self.label} seed {self.seed}"

    @property
    def max_steps(self) -> int | None:
        """The job's update budget (the last trainer.max_steps override), if it has one."""
        budgets = [
            o.partition("=")[2] for o in self.overrides if o.startswith("trainer.max_steps=")
        ]
        return int(budgets[-1]) if budgets and budgets[-1] != "null" else None

    def status(self) -> str:
        """'done' (results.json), 'resume' (a checkpoint), 'partial' (started, no checkpoint)
        or 'new'."""
        if (self.directory / "results.json").is_file():
            return "done"
        if (self.directory / "checkpoints" / "last.pt").is_file():
            return "resume"
        return "partial" if self.directory.exists() else "new"


def scale_spec(paper: DictConfig, scale: str) -> DictConfig:
    """The paper's settings at `scale`, refused in one line if it has none."""
    if scale not in paper.scales:
        raise NmtError(
            f"scale: '{scale}' is not one of paper {paper.name}'s scales "
            f"({', '.join(paper.scales)})"
        )
    return paper.scales[scale]


ROW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a directory name under out=
# What a paper file's overrides may not set: where a job runs and writes (hydra.*, the seed and
# directory the plan gives), the runs it continues, and Hydra's build keys (nmt.trust).
PAPER_REFUSES = re.compile(r"(hydra([./].*)?|seed|resume|init_from|allow_targets|.*\b_\w*_)")


def check_paper_override(paper: DictConfig, where: str, override: Any) -> str:
    """One override of a paper file, refused in one line where it would decide something a
    paper file must not (PAPER_REFUSES)."""
    key = str(override).lstrip("+~").partition("=")[0]
    if PAPER_REFUSES.fullmatch(key):
        raise NmtError(f"paper {paper.name}: {where}: the override '{override}' is refused")
    return str(override)


def row_overrides(paper: DictConfig, row: DictConfig, scale: str, extra: list[str]) -> list[str]:
    """The `nmt-train` overrides of one row at `scale` (the seed and directory come apart)."""
    spec = scale_spec(paper, scale)
    if not ROW_ID.fullmatch(str(row.experiment)):
        raise NmtError(
            f"paper {paper.name}: row {row.id}: experiment '{row.experiment}' is refused"
        )
    overrides = [f"experiment={row.experiment}"]
    overrides += [check_paper_override(paper, f"scales.{scale}", o) for o in spec.overrides]
    own = row.get("overrides", {}).get(scale, [])  # the row's own at this scale
    overrides += [check_paper_override(paper, f"row {row.id}", o) for o in own]
    if spec.max_steps is not None:
        overrides.append(f"trainer.max_steps={int(spec.max_steps * row.get('steps_factor', 1))}")
    return overrides + list(extra)


def plan(
    paper: DictConfig,
    scale: str,
    seeds: int,
    out: Path,
    extra: list[str],
    allow: Sequence[str] = (),
) -> list[Job]:
    """All jobs, seed by seed (every row of seed 1 first), so that whole seeds finish first.
    Each row gets `seeds` seeds, or its own `seeds` where the paper file asks for more. A row's
    id names its directory under `out`, so it is a plain name (ROW_ID)."""
    if seeds < 1:
        raise NmtError(f"seeds: must be at least 1, not {seeds}")
    for row in paper.rows:
        if not ROW_ID.fullmatch(str(row.id)):
            raise NmtError(
                f"paper {paper.name}: row id {str(row.id)!r} is refused (a plain name: letters, "
                "digits, '_' and '-')"
            )
    most = max([seeds, *(int(row.get("seeds", 1)) for row in paper.rows)])
    return [
        Job(
            row=row.id,
            label=row.label,
            seed=seed,
            directory=out / row.id / f"seed{seed}",
            overrides=(*row_overrides(paper, row, scale, extra), f"seed={seed}"),
            allow_targets=tuple(allow),
        )
        for seed in range(1, most + 1)
        for row in paper.rows
        if seed <= max(seeds, int(row.get("seeds", 1)))
    ]


def check_same_job(job: Job) -> None:
    """Refuse to resume or reuse a job directory made with other overrides."""
    saved = job.directory / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        return
    before = [str(o) for o in OmegaConf.load(saved)]
    if before != list(job.overrides):
        raise NmtError(
            f"{job.directory} was run with other overrides ({' '.join(before)}), not "
            f"({' '.join(job.overrides)}); move it away or choose another out="
        )
