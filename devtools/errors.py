"""The tooling's user errors: each a :class:`project.errors.UserError`, so tasks catch one base and exit 2."""

from __future__ import annotations

from project.configuration import ConfigError
from project.errors import UserError

__all__ = [
    "ClusterError",
    "ComposeError",
    "ConfigError",
    "DatabaseError",
    "DependencyError",
    "DeployError",
    "NewProjectError",
    "ScenarioError",
    "UserError",
]


class ClusterError(UserError):
    """The local server cannot be set up, started or stopped; the message says how to fix it."""


class DatabaseError(UserError):
    """A server refused a connection, a drop was refused, or a migration command failed."""


class ScenarioError(UserError):
    """A scenario could not be found or loaded; the message names the step that failed."""


class ComposeError(UserError):
    """Docker or its compose client is missing, or a stack has no compose file."""


class NewProjectError(UserError):
    """A new project cannot be created: a name is invalid, the destination is taken, or git failed."""


class DeployError(UserError):
    """A deployment cannot be rendered or checked as asked: no image, a literal secret, a bad secret location or
    option."""


class DependencyError(UserError):
    """The requirements cannot be compiled or changed as asked: a bad layer or requirement, or a resolution that
    fails; the message carries the resolver's reason."""
