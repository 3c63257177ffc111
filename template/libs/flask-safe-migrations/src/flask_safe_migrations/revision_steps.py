"""Run the migrations one revision at a time, by revision id (for the tests).

`alembic.command.upgrade()` and `downgrade()` read the whole history again on
every call (a new ScriptDirectory imports every revision file), so a walk
through N revisions would cost O(N^2). A RevisionSteps reads the history once
and runs each step by its revision id, which stays exact where the history
branched and merged, and where "-1" would be ambiguous.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationStep
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Engine

# From the revisions the database is at (a tuple, though Alembic types it str),
# the steps to run.
Plan = Callable[[Any], Sequence[MigrationStep]]


class RevisionSteps:
    """The revisions of ``config``'s migrations, applied to ``engine`` and then
    to the engine of each bind in ``binds`` (binds.py)."""

    def __init__(
        self, config: Config, engine: Engine, binds: Mapping[str, Engine] | None = None
    ) -> None:
        self.config = config
        self.engine = engine
        self.binds = dict(binds or {})
        self.script = ScriptDirectory.from_config(config)

    def heads(self) -> tuple[str, ...]:
        return tuple(self.script.get_heads())

    def in_order(self) -> list[Script]:
        """Every revision, each after the revisions it builds on."""
        return list(reversed(list(self.script.walk_revisions())))

    def current(self) -> tuple[str, ...]:
        """The revisions the database is at (several while branches are apart)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_heads()

    def upgrade(self, revision: Script) -> None:
        """Apply ``revision`` alone; the revisions it builds on are applied."""
        self._run(
            lambda _: [
                MigrationStep.upgrade_from_script(self.script.revision_map, revision)
            ]
        )

    def downgrade(self, revision: Script) -> None:
        """Undo ``revision`` alone; no applied revision builds on it."""
        self._run(
            lambda _: [
                MigrationStep.downgrade_from_script(self.script.revision_map, revision)
            ]
        )

    def upgrade_to_heads(self) -> None:
        # The private helper is what `alembic upgrade heads` itself runs.
        self._run(lambda current: self.script._upgrade_revs("heads", current))

    def _run(self, plan: Plan) -> None:
        """Run env.py once per database, with the steps ``plan`` makes from the
        database's current heads."""
        for bind, engine in [(None, self.engine), *self.binds.items()]:
            self._run_on(engine, bind, plan)

    def _run_on(self, engine: Engine, bind: str | None, plan: Plan) -> None:
        # No compiled cache: the engine's would keep the tables that batch mode
        # reflects, and through them every revision module, alive for good.
        with engine.connect().execution_options(compiled_cache=None) as connection:
            self.config.attributes["connection"] = connection
            self.config.attributes["bind"] = bind
            try:
                with EnvironmentContext(
                    self.config,
                    self.script,
                    fn=lambda current, _: list(plan(current)),
                ):
                    self.script.run_env()
            finally:
                del self.config.attributes["connection"]
                del self.config.attributes["bind"]
            if connection.in_transaction():
                connection.commit()
