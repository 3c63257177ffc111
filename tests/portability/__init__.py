"""Files the portability tests copy into a rendered project: the schema (shop.py)
and the script that drives its migrations (drive.py)."""
