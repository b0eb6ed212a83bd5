"""`python -m nmt.reproduce`: the same command as `nmt-reproduce` (nmt/cli/reproduce.py)."""

from nmt.cli.reproduce import main

if __name__ == "__main__":
    main()
