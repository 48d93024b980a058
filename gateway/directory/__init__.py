"""The directory (SPEC §14): the people and teams every rule reads, kept in the store.

`Person`, `Team` and `normalise_email` are the model (no I/O); `gateway.directory.service`
is the facade the API, the pages, SCIM and OIDC use; `gateway.directory.deprovision` is what
happens to a person's requests when they leave.
"""

from gateway.directory.people import SOURCES, Person, Team, normalise_email

__all__ = ["SOURCES", "Person", "Team", "normalise_email"]
