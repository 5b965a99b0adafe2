"""Flask extensions, created unbound here and bound to an app with ``init_app`` in the factory."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData
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
