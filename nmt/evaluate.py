"""`python -m nmt.evaluate`: the same command as `nmt-evaluate` (nmt/cli/evaluate.py)."""

from nmt.cli.evaluate import main

if __name__ == "__main__":
    main()
