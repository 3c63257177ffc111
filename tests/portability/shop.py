"""A shop: the portability proof's schema (every kind of column and constraint)."""

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Base

JSON_DOCUMENT = JSON().with_variant(postgresql.JSONB(), "postgresql")
PRECISE_TIME = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


class Status(enum.Enum):
    draft = "draft"
    active = "active"
    retired = "retired"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    nickname: Mapped[str] = mapped_column(String(50), server_default="")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    is_staff: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    joined_on: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    # One side of a cycle: teams.captain_id points back here.
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL")
    )


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    captain_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )


class Profile(Base):
    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    bio: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON_DOCUMENT)
    score: Mapped[Decimal] = mapped_column(Numeric(10, 2), server_default="0")


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    # The other cycle, declared with use_alter: products.category_id points back.
    featured_product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", use_alter=True, ondelete="SET NULL")
    )


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT")
    )
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=20), server_default="draft"
    )
    stock: Mapped[int] = mapped_column(Integer, server_default="0")
    published: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index(None, "account_id", "placed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE")
    )
    placed_at: Mapped[datetime] = mapped_column(PRECISE_TIME, server_default=func.now())
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=20), server_default="active"
    )
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2), server_default="0")
    note: Mapped[str] = mapped_column(String(200), server_default="")


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (UniqueConstraint("order_id", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, server_default="1")
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class ProductTag(Base):
    __tablename__ = "product_tags"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    rating: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE")
    )
    line1: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), server_default="US")
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="0")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "actor_id", "occurred_at"),)

    # BIGINT on the servers; SQLite autoincrements only an INTEGER primary key.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    occurred_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON_DOCUMENT)


class Warehouse(Base):
    __tablename__ = "warehouses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(10), unique=True)
    opened_on: Mapped[date | None] = mapped_column(Date)


class StockLevel(Base):
    __tablename__ = "stock_levels"

    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
