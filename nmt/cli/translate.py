"""`nmt-translate checkpoint=PATH [input=FILE|-] [decode=beam decode.beam_size=K]
[decode.n_best=N] [save_attention=DIR]`: raw text in, one sentence a line; only the translations
go to stdout (with n_best > 1: `line<TAB>score<TAB>translation`, N lines per input), logs to
stderr, and no run directory is made."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nmt.cli.common import cli, entry_point, require
from nmt.config import CONFIG_DIR, DecodeConfig, typed, typed_flag
from nmt.data import normalize
from nmt.decoding.translator import Translator
from nmt.errors import NmtError
from nmt.evaluation.plots import save_attention


def decode_lines(data: bytes, name: str) -> list[str]:
    """UTF-8 lines, whitespace-normalised; a bad byte is an error naming its line."""
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            lines.append(normalize(raw.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise NmtError(
                f"input {name}:{number}: not valid UTF-8 (byte {raw[err.start]:#04x} at column "
                f"{err.start + 1})"
            ) from None
    return lines


def read_input(name: str) -> list[str]:
    """The lines of file `name`, or of standard input for '-'."""
    if name == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise NmtError("input -: standard input is closed")
        try:
            return decode_lines(sys.stdin.buffer.read(), "-")
        except OSError as err:
            raise NmtError(f"input -: cannot read standard input ({err.strerror})") from None
    try:
        data = Path(name).read_bytes()
    except FileNotFoundError:
        raise NmtError(f"input {name}: no such file") from None
    except IsADirectoryError:
        raise NmtError(f"input {name}: is a directory, not a file") from None
    except OSError as err:
        raise NmtError(f"input {name}: {err.strerror}") from None
    return decode_lines(data, name)


def write_quietly_to_a_closed_pipe(write: Callable[[], None]) -> None:
    """Run `write`; if stdout's reader has gone (`| head -1`), end quietly as Unix tools do."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail
        sys.exit(0)


@entry_point
@hydra.main(config_path=CONFIG_DIR, config_name="translate", version_base="1.3")
@cli
def main(cfg: DictConfig) -> None:
    """`nmt-translate checkpoint=PATH`: raw text in, one translation a line on stdout."""
    require(cfg, "checkpoint", "checkpoint=PATH")
    decode = typed(DecodeConfig, cfg.decode, "decode")
    if cfg.save_attention and Path(cfg.save_attention).exists():
        if not Path(cfg.save_attention).is_dir():
            raise NmtError(f"save_attention={cfg.save_attention}: a file, not a directory")
    translator = Translator.from_checkpoint(
        cfg.checkpoint, cfg.device, typed_flag(cfg, "fast"), decode, cfg.allow_targets
    )
    lines = read_input(str(cfg.input))
    found = translator.translate(lines, attention=bool(cfg.save_attention))

    def write() -> None:
        for i, (line, nbest) in enumerate(zip(lines, found, strict=True)):
            if not line:  # an empty line translates to an empty line
                print("" if decode.n_best == 1 else f"{i}\t\t")
                continue
            for hyp in nbest:
                print(hyp.text if decode.n_best == 1 else f"{i}\t{hyp.score:.4f}\t{hyp.text}")

    write_quietly_to_a_closed_pipe(write)
    if cfg.save_attention:
        given = [i for i, line in enumerate(lines) if line]
        save_attention(Path(cfg.save_attention), [found[i][0] for i in given], numbers=given)


if __name__ == "__main__":
    main()
