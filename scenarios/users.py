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
SPAN_DAYS = 3 * 365
# Formatting a datetime per row costs more than the rest of the row: format each day once, and the time of day
# with integer arithmetic (the text is what datetime.isoformat() gives).
DAYS = [(EPOCH + timedelta(days=day)).date().isoformat() for day in range(SPAN_DAYS)]


def rows(size, rng):
    """Yield (email, name, created_at) rows; emails are unique, the rest drawn from ``rng``."""
    span = SPAN_DAYS * 24 * 3600
    for i in range(size):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{i}@{rng.choice(DOMAINS)}".lower().replace(" ", "")
        yield email, f"{first} {last}", created_at(rng.randrange(span))


def created_at(seconds: int) -> str:
    """Return the ISO 8601 text of ``seconds`` after EPOCH."""
    day, seconds = divmod(seconds, 24 * 3600)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    return f"{DAYS[day]}T{hour:02d}:{minute:02d}:{second:02d}+00:00"


def fill(connection, *, size, rng):
    """Load ``size`` users."""
    copy_rows(connection, "users", ("email", "name", "created_at"), rows(size, rng), total=size)
