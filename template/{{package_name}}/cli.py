"""The project's own command: `<script> db upgrade` works like `flask db upgrade`.

Installed as a console script (see [project.scripts] in pyproject.toml), it finds
the app without FLASK_APP and from any working directory.

From the project template: `copier update` merges its changes into your
edits (README.md, "Layout").
"""

from flask.cli import FlaskGroup

from . import create_app

cli = FlaskGroup(create_app=create_app, help=__doc__)
