"""`python -m cfai <command>`: see `cfai.cli` (e.g. `python -m cfai compare --local --json`)."""

from cfai.cli import main

raise SystemExit(main())
