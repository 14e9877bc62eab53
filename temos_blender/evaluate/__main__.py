"""``python -m temos_blender.evaluate --model DIR``: evaluate a model folder (see :mod:`.run`)."""

from .run import main

raise SystemExit(main())
