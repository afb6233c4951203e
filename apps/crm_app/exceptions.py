"""crm-app's errors: one root, each carrying a machine-readable code."""

from __future__ import annotations


class CRMError(Exception):
    """Root of every error the CRM raises on purpose."""

    code = "crm_error"
    status = 500


class NotFound(CRMError):
    """The entity with that id does not exist."""

    code = "not_found"
    status = 404

    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(f"{entity} {entity_id!r} not found")
        self.entity = entity
        self.entity_id = entity_id


class InvalidField(CRMError):
    """A request field is well-formed but not acceptable (e.g. it references a missing customer)."""

    code = "invalid_field"
    status = 422

    def __init__(self, field: str, message: str, location: str = "json") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.location = location  # where the field was sent: json, query or headers, as in a 422's detail


class UnknownReference(InvalidField):
    """A field names an entity that does not exist (404, as for any missing resource, with the field named)."""

    code = "not_found"
    status = 404


class IdempotencyConflict(InvalidField):
    """An Idempotency-Key already used for a request with other data (409, as for a conflicting state)."""

    code = "idempotency_conflict"
    status = 409

    def __init__(self) -> None:
        super().__init__("Idempotency-Key", "this key was already used for a request with other data", "headers")


class DatabaseError(CRMError):
    """DynamoDB failed: unreachable, denied, throttled after retries, or the table is missing."""

    code = "database_error"
    status = 503

    def __init__(self, aws_code: str, detail: str) -> None:
        super().__init__(f"database error: {aws_code}: {detail}")
        self.aws_code = aws_code
        self.detail = detail
