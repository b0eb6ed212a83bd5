"""`python -m nmt.train`: the same command as `nmt-train` (nmt/cli/train.py)."""

from nmt.cli.train import main

if __name__ == "__main__":
    main()
