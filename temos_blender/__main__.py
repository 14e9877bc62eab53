"""``python -m temos_blender …`` is the ``temos-blender`` command (see :mod:`.cli`)."""

from .cli import main

raise SystemExit(main())
