"""`python -m nmt.report`: the same command as `nmt-report` (nmt/cli/report.py)."""

from nmt.cli.report import main

if __name__ == "__main__":
    main()
