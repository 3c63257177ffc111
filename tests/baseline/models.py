"""The models at the newest revision of the history the baseline tests squash
(written into the project's models/ package, one module each)."""

USER = '''\
"""A user, in a team."""

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.current_timestamp()
    )
    active: Mapped[bool] = mapped_column(Boolean, server_default=false())
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
'''

TEAM = '''\
"""A team."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Team(Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
'''

NOTE = '''\
"""A note about a user."""

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Note(Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
'''

INIT = '''\
"""The models."""

from .note import Note
from .team import Team
from .user import User

__all__ = ["Note", "Team", "User"]
'''

MODULES = {
    "__init__.py": INIT,
    "user.py": USER,
    "team.py": TEAM,
    "note.py": NOTE,
}
