"""A few users with varied names and sign-up dates, for trying queries on users."""

from datetime import UTC, datetime, timedelta

from devtools.scenarios import copy_rows

DEFAULT_SIZE = 1_000

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "Guido",
    "Hedy",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Shafi",
    "Tim",
    "Barbara",
    "John",
    "Katherine",
]
LAST_NAMES = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Knuth",
    "Dijkstra",
    "Allen",
    "Hopper",
    "van Rossum",
    "Lamarr",
    "Thompson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Goldwasser",
    "Berners-Lee",
]
DOMAINS = ["example.com", "example.org", "example.net"]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def rows(size, rng):
    """Yield (email, name, created_at) rows; emails are unique, the rest drawn from ``rng``."""
    span = 3 * 365 * 24 * 3600
    for i in range(size):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{i}@{rng.choice(DOMAINS)}".lower().replace(" ", "")
        created = EPOCH + timedelta(seconds=rng.randrange(span))
        yield email, f"{first} {last}", created.isoformat()


def fill(connection, *, size, rng):
    """Load ``size`` users."""
    copy_rows(connection, "users", ("email", "name", "created_at"), rows(size, rng), total=size)
