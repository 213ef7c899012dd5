"""API keys for the prediction service: issued once, stored only as a hash, checked on every request.

Keys live in the store (not in a config file) so the API, the CLI and the UI share one list, and a key revoked
on one machine stops working on every replica at its next request. Scopes are coarse on purpose: who may send
photos (``inspect``), who may work the review queue (``review``) and who may manage models and keys (``admin``).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import JSON, Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import String

from autoinspect.errors import ConfigError
from autoinspect.store.tables import Base, UTCDateTime

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "aik"
"""Every token starts with ``aik_``, so secret scanners and people can tell an AutoInspect key at a glance."""
MAX_NAME_LENGTH = 128
_ID_ATTEMPTS = 5
"""Key ids are 32 random bits: a clash is rare but possible once there are many keys, so creation retries."""
_TOKEN = re.compile(rf"{TOKEN_PREFIX}_([0-9a-f]{{8}})_([A-Za-z0-9_-]{{32,64}})", re.ASCII)
"""``aik_<8 hex key id>_<token_urlsafe(32)>``; the id has no ``_``, so the first two ``_`` split the token even
though the secret may contain more. Anything else is rejected before the database is asked."""
_MAX_TOKEN_LENGTH = 128
"""Longer input is rejected unmatched, so a 10 MB header costs no regex or hashing time."""


class Scope(StrEnum):
    """What a key may do; :meth:`ApiKey.allows` holds the one implication (``admin`` allows everything)."""

    INSPECT = "inspect"
    """Send photos for inspection."""
    REVIEW = "review"
    """Read and label the review queue; does not allow sending photos, so reviewers' keys cannot skew traffic."""
    ADMIN = "admin"
    """Manage models, deployments and keys; allows every other scope."""


class ApiKeyRecord(Base):
    """One issued key as stored: the public id and the SHA-256 of the secret, never the token itself."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiKey(BaseModel):
    """A key as the service sees it after verification: who it is and what it may do, without its secret.

    Example:
        >>> key = ApiKey(key_id="0badcafe", name="ci", scopes={Scope.ADMIN}, created_at=datetime.now(UTC))
        >>> key.allows(Scope.INSPECT), key.active
        (True, True)
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    key_id: str
    """Public part of the token: safe to log and to show in the UI, and what :meth:`ApiKeys.revoke` takes."""
    name: str
    """Who or what holds the key (a team, a line, a CI job): what handlers log as the actor."""
    scopes: frozenset[Scope]
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: Scope) -> bool:
        """True when the key holds ``scope`` or ``admin``; ``review`` does not allow ``inspect``."""
        return scope in self.scopes or Scope.ADMIN in self.scopes


class IssuedKey(BaseModel):
    """A new key and its token: the only time the token exists outside its holder, so show it and forget it."""

    model_config = ConfigDict(frozen=True)

    key: ApiKey
    token: str

    def __repr__(self) -> str:
        # The token must not end up in logs or tracebacks through a stray repr.
        return f"IssuedKey(key={self.key!r}, token='{TOKEN_PREFIX}_{self.key.key_id}_***')"

    __str__ = __repr__


class ApiKeys:
    """Issues, verifies, lists and revokes keys in the ``api_keys`` table; thread-safe (a connection per call).

    Example:
        >>> from autoinspect.store.database import create_schema, make_engine
        >>> engine = make_engine("sqlite://")
        >>> create_schema(engine)
        >>> keys = ApiKeys(engine)
        >>> issued = keys.create("line 3 camera", [Scope.INSPECT])
        >>> keys.verify(issued.token) == issued.key
        True
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, name: str, scopes: Iterable[Scope | str]) -> IssuedKey:
        """Issue a key named ``name`` with ``scopes``; the returned token is not stored and cannot be shown again.

        Raises:
            ConfigError: ``name`` is blank or too long, ``scopes`` is empty or names an unknown scope.
        """
        clean_name = name.strip()
        if not clean_name:
            raise ConfigError("an API key needs a name saying who holds it (a team, a line, a CI job)")
        if len(clean_name) > MAX_NAME_LENGTH:
            raise ConfigError(f"API key name is {len(clean_name)} characters long; the limit is {MAX_NAME_LENGTH}")
        granted = _parse_scopes(scopes)
        for _ in range(_ID_ATTEMPTS):
            key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
            record = ApiKeyRecord(
                key_id=key_id,
                name=clean_name,
                secret_sha256=_sha256(secret),
                scopes=sorted(scope.value for scope in granted),
                created_at=datetime.now(UTC),
            )
            try:
                with Session(self._engine) as session, session.begin():
                    session.add(record)
                    session.flush()
                    key = ApiKey.model_validate(record)
            except IntegrityError:
                logger.debug("API key id %s already taken; drawing another", key_id)
                continue
            logger.info("issued API key %s (%s) with scopes %s", key_id, clean_name, ", ".join(sorted(key.scopes)))
            return IssuedKey(key=key, token=f"{TOKEN_PREFIX}_{key_id}_{secret}")
        raise ConfigError(f"could not draw an unused API key id in {_ID_ATTEMPTS} attempts; is the table corrupt?")

    def verify(self, token: str) -> ApiKey | None:
        """The active key that ``token`` belongs to, or ``None`` when it is malformed, unknown, wrong or revoked.

        The secret is a 256-bit random value, so a single fast SHA-256 is enough: there is nothing to brute-force,
        unlike a password, and a slow hash (bcrypt, scrypt) would add its cost to every request. Never raises on
        garbage input: a client's header is not trusted to be a string of sane length or alphabet.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        with Session(self._engine) as session:
            record = session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.key_id == key_id)).one_or_none()
            if record is None:
                return None
            if not hmac.compare_digest(record.secret_sha256, _sha256(secret)):
                logger.debug("API key %s presented with a wrong secret", key_id)
                return None
            if record.revoked_at is not None:
                logger.debug("revoked API key %s (%s) presented", key_id, record.name)
                return None
            return ApiKey.model_validate(record)

    def list(self) -> builtins.list[ApiKey]:
        """Every key ever issued, oldest first, revoked ones included so an audit can see who had access."""
        query = select(ApiKeyRecord).order_by(ApiKeyRecord.created_at, ApiKeyRecord.id)
        with Session(self._engine) as session:
            return [ApiKey.model_validate(record) for record in session.scalars(query)]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` from now on and return it; revoking again keeps the first revocation time.

        Raises:
            ConfigError: no key has this id.
        """
        with Session(self._engine) as session, session.begin():
            # A conditional update, not read-then-write: two admins revoking at once agree on one time.
            revoke_now = (
                update(ApiKeyRecord)
                .where(ApiKeyRecord.key_id == key_id, ApiKeyRecord.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
                .returning(ApiKeyRecord.id)
            )
            revoked = session.execute(revoke_now).first() is not None
            record = session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.key_id == key_id)).one_or_none()
            if record is None:
                raise ConfigError(f"no API key has id {key_id!r}; list the keys to see their ids")
            key = ApiKey.model_validate(record)
        if revoked:
            logger.info("revoked API key %s (%s)", key.key_id, key.name)
        return key

    def count_active(self) -> int:
        query = select(func.count()).select_from(ApiKeyRecord).where(ApiKeyRecord.revoked_at.is_(None))
        with self._engine.connect() as connection:
            return connection.execute(query).scalar_one()


def _parse_scopes(scopes: Iterable[Scope | str]) -> frozenset[Scope]:
    """The scopes as :class:`Scope` members; a lone string is one scope, not an iterable of letters."""
    values: Iterable[Any] = [scopes] if isinstance(scopes, str) else scopes
    granted: set[Scope] = set()
    for value in values:
        try:
            granted.add(Scope(value))
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise ConfigError(f"unknown API key scope {value!r}; choose from {known}") from None
    if not granted:
        raise ConfigError(f"an API key needs at least one scope: {', '.join(scope.value for scope in Scope)}")
    return frozenset(granted)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()
