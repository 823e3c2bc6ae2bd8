"""Tables of the exchange block.

Every node database has them all, but each is filled on one kind of node:

* on the ``registry`` node: members, subsystems, services, gateways, local groups, access
  rights, the global configurations it signed (``exchange_globalconfs``) and the shared
  parameters of federated instances (``exchange_peer_confs``);
* on each ``gateway-*`` node: the global configuration it downloaded and verified
  (``exchange_cached_confs``) and the message ids it has seen per client
  (``exchange_seen_messages``, the replay guard). Its message log is the node's audit chain
  ``message-log`` (``audit_records``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jisr.core.db import Base, IdMixin


class Member(IdMixin, Base):
    """An organisation: ``INSTANCE/CLASS/CODE``."""

    __tablename__ = "exchange_members"
    __table_args__ = (sa.UniqueConstraint("instance", "member_class", "code"),)

    instance: Mapped[str] = mapped_column(sa.String(20))
    member_class: Mapped[str] = mapped_column(sa.String(8))
    code: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime]

    subsystems: Mapped[list[Subsystem]] = relationship(back_populates="member")


class Subsystem(IdMixin, Base):
    """An information system of a member; clients and providers are subsystems."""

    __tablename__ = "exchange_subsystems"
    __table_args__ = (sa.UniqueConstraint("member_id", "code"),)

    member_id: Mapped[int] = mapped_column(
        sa.ForeignKey("exchange_members.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime]

    member: Mapped[Member] = relationship(back_populates="subsystems")


class Service(IdMixin, Base):
    """A service a subsystem provides, and where its information system answers."""

    __tablename__ = "exchange_services"
    __table_args__ = (sa.UniqueConstraint("subsystem_id", "code"),)

    subsystem_id: Mapped[int] = mapped_column(
        sa.ForeignKey("exchange_subsystems.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(sa.String(64))
    base_url: Mapped[str] = mapped_column(sa.String(2000))
    openapi: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[dt.datetime]

    subsystem: Mapped[Subsystem] = relationship()


class Gateway(IdMixin, Base):
    """A member's gateway (security server), its peer address and its two certificates."""

    __tablename__ = "exchange_gateways"

    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    member_id: Mapped[int] = mapped_column(
        sa.ForeignKey("exchange_members.id", ondelete="CASCADE"), unique=True
    )
    address: Mapped[str] = mapped_column(sa.String(300))
    tls_certificate: Mapped[str] = mapped_column(sa.Text)
    signing_certificate: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime]

    member: Mapped[Member] = relationship()


class LocalGroup(IdMixin, Base):
    """A member's local group of client subsystems (its own, other members', or of a
    federated instance); access rights to the member's services may name the group."""

    __tablename__ = "exchange_local_groups"
    __table_args__ = (sa.UniqueConstraint("member_id", "code"),)

    member_id: Mapped[int] = mapped_column(
        sa.ForeignKey("exchange_members.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime]

    member: Mapped[Member] = relationship()


class LocalGroupMember(IdMixin, Base):
    """A subsystem (its identifier, as it may be of another instance) in a local group."""

    __tablename__ = "exchange_local_group_members"
    __table_args__ = (sa.UniqueConstraint("group_id", "client"),)

    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("exchange_local_groups.id", ondelete="CASCADE"), index=True
    )
    client: Mapped[str] = mapped_column(sa.String(300))
    added_at: Mapped[dt.datetime]


class AccessRight(IdMixin, Base):
    """A client may call a service (``*`` for any method, a path pattern). The client is
    exactly one of: a subsystem of this instance (``client_id``), a local group of the
    service's member (``group_id``), or a subsystem of a federated instance
    (``foreign_client``, its identifier)."""

    __tablename__ = "exchange_access_rights"
    __table_args__ = (sa.UniqueConstraint("service_id", "client_id", "method", "path"),)

    service_id: Mapped[int] = mapped_column(
        sa.ForeignKey("exchange_services.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("exchange_subsystems.id", ondelete="CASCADE"), index=True, nullable=True
    )
    group_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("exchange_local_groups.id", ondelete="CASCADE"), index=True, nullable=True
    )
    foreign_client: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(500))
    granted_at: Mapped[dt.datetime]

    service: Mapped[Service] = relationship()
    client: Mapped[Subsystem | None] = relationship()
    group: Mapped[LocalGroup | None] = relationship()


class SignedGlobalConf(IdMixin, Base):
    """A global configuration the registry signed (``token`` is the compact JWS)."""

    __tablename__ = "exchange_globalconfs"

    version: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    generated_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    token: Mapped[str] = mapped_column(sa.Text)


class CachedGlobalConf(IdMixin, Base):
    """A global configuration a gateway downloaded and verified (the newest one is used)."""

    __tablename__ = "exchange_cached_confs"

    version: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    generated_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    fetched_at: Mapped[dt.datetime]
    token: Mapped[str] = mapped_column(sa.Text)


class SeenMessage(IdMixin, Base):
    """A message id a provider gateway accepted from a client: a second one is a replay.

    No unique key on (client, message_id): the gateway's memory of the window's ids decides
    (``GatewayRuntime.first_sight``), loaded from this table when it starts; such a key would
    put a random B-tree leaf into every call's commit (docs/exchange.md, Seventh pass)."""

    __tablename__ = "exchange_seen_messages"

    client: Mapped[str] = mapped_column(sa.String(300))
    message_id: Mapped[str] = mapped_column(sa.String(255))
    seen_at: Mapped[dt.datetime] = mapped_column(index=True)


class PeerConf(IdMixin, Base):
    """The shared parameters of a federated instance (a compact JWS signed by its registry's
    federation key, the key the agreement pins), as this registry last downloaded them."""

    __tablename__ = "exchange_peer_confs"

    peer_instance: Mapped[str] = mapped_column(sa.String(16), unique=True)
    agreement_id: Mapped[str] = mapped_column(sa.String(36))
    version: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at: Mapped[dt.datetime]
    fetched_at: Mapped[dt.datetime]
    token: Mapped[str] = mapped_column(sa.Text)
