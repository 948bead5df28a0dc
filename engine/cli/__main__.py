"""`python -m engine.cli`: the `kimari` command without the installed script."""

import sys

from engine.cli.main import main

sys.exit(main())
