"""Tables of the population register and of the people's login credentials (node ``idp``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jisr.core.db import Base, IdMixin


class Person(IdMixin, Base):
    """A person in the register, identified by a country-prefixed national identifier.

    ``national_id`` is the X-Road-UserId form (``MAAB123456``, ``QA28435612345``); the CLI and
    pages write it ``MA:AB123456``. ``*_key`` columns hold normalised names for search.
    """

    __tablename__ = "identity_persons"

    national_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    given_name_ar: Mapped[str] = mapped_column(sa.String(200))
    family_name_ar: Mapped[str] = mapped_column(sa.String(200))
    given_name_latin: Mapped[str] = mapped_column(sa.String(200))
    family_name_latin: Mapped[str] = mapped_column(sa.String(200))
    name_key_ar: Mapped[str] = mapped_column(sa.String(400), index=True)
    name_key_latin: Mapped[str] = mapped_column(sa.String(400), index=True)
    birth_date: Mapped[dt.date] = mapped_column(sa.Date)
    birth_place: Mapped[str] = mapped_column(sa.String(200))
    sex: Mapped[str] = mapped_column(sa.String(1))
    nationality: Mapped[str] = mapped_column(sa.String(2))
    address: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="alive")
    death_date: Mapped[dt.date | None] = mapped_column(sa.Date, nullable=True)
    email: Mapped[str | None] = mapped_column(sa.String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    account: Mapped[Account | None] = relationship(back_populates="person", uselist=False)


class Account(IdMixin, Base):
    """A person's login: password (argon2) and an optional TOTP second factor."""

    __tablename__ = "identity_accounts"

    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("identity_persons.id", ondelete="CASCADE"), unique=True
    )
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    totp_secret: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    person: Mapped[Person] = relationship(back_populates="account")
