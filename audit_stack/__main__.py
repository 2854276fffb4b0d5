"""``python -m audit_stack``: the operator CLI, the same as the ``audit`` console script."""

import sys

from audit_stack.cli import main

sys.exit(main())
