"""``python -m core.train``: see ``core.train.session``."""

import sys

from core.train.session import main

sys.exit(main())
