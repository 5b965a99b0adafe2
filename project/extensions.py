"""Flask extensions, created unbound here and bound to an app with ``init_app`` in the factory."""

import time

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so migrations can refer to constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def autocommit_reads() -> None:
    """Run this request's queries without a transaction: each goes out alone, with no BEGIN or ROLLBACK around
    it. For requests that only read. A session handed a Connection already in a transaction (as the tests do)
    joins that transaction instead."""
    if isinstance(db.session.get_bind(), Engine):
        # psycopg2's own flag: SQLAlchemy's AUTOCOMMIT isolation level would send a SET on the way in and out.
        db.session.connection().connection.dbapi_connection.autocommit = True


def end_autocommit(dbapi_connection, connection_record) -> None:
    """Put a connection back in transactional mode as it returns to the pool (a flag: no round trip)."""
    if getattr(dbapi_connection, "autocommit", False):
        dbapi_connection.autocommit = False


def watch_pool(engine: Engine, ping_after_idle: float) -> None:
    """Ping a pooled connection on checkout only when it has been idle for ``ping_after_idle`` seconds or more.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a whole round trip per request, a third of a short
    read's time. A connection used a moment ago is very likely alive; one that sat idle is the kind a restart,
    a proxy or a firewall has cut. A dead connection that slips through fails its first statement, which
    invalidates the whole pool (see :func:`retry_on_new_connection` for what a request does then).
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def checkin(dbapi_connection, connection_record) -> None:
        end_autocommit(dbapi_connection, connection_record)
        connection_record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection, connection_record, connection_proxy) -> None:
        checked_in_at = connection_record.info.get("checked_in_at")  # absent on a connection made just now
        if checked_in_at is None or time.monotonic() - checked_in_at < ping_after_idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool discards this connection and every older one, then hands out a new one.
                raise DisconnectionError(str(exc).partition("\n")[0]) from exc
            raise


def retry_on_new_connection(exc: BaseException) -> bool:
    """Tell whether ``exc`` says the statement died with its connection (a restart, a cut), not in the database.

    The pool has then been invalidated, so running the work again gets a new connection.
    """
    return bool(getattr(exc, "connection_invalidated", False))
