"""What the portability tests (tests/library/test_portability.py) put in a
MiniProject: the schema (shop.py); and what drives its migrations (drive.py)."""
