"""``python -m portal.cli``: the ``portal`` command."""

import sys

from portal.cli import main

sys.exit(main())
