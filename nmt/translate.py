"""`python -m nmt.translate`: the same command as `nmt-translate` (nmt/cli/translate.py)."""

from nmt.cli.translate import main

if __name__ == "__main__":
    main()
