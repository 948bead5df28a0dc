"""`python -m engine.cli`: the `kimari` command without the installed script."""

from engine.cli.main import main

main()
