"""``python -m course_lib.data --out data/shop``: regenerate the shop dataset from its seed."""
from .shop import main

raise SystemExit(main())
