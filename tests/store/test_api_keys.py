"""API keys, on SQLite and on PostgreSQL: issue, verify, revoke, list; only a hash of the secret is ever stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from autoinspect.errors import ConfigError
from autoinspect.store import ApiKey, ApiKeyRecord, ApiKeys, Scope


@pytest.fixture
def keys(engine: Engine) -> ApiKeys:
    return ApiKeys(engine)


def test_created_key_verifies_with_its_name_and_scopes(keys: ApiKeys) -> None:
    before = datetime.now(UTC)
    issued = keys.create("  line 3 camera ", [Scope.INSPECT, "review", Scope.INSPECT])
    assert issued.token.startswith(f"aik_{issued.key.key_id}_")
    verified = keys.verify(issued.token)
    assert verified == issued.key
    assert verified.name == "line 3 camera"
    assert verified.scopes == {Scope.INSPECT, Scope.REVIEW}
    assert verified.revoked_at is None and verified.active
    assert before - timedelta(seconds=1) <= verified.created_at <= datetime.now(UTC)
    assert verified.created_at.utcoffset() == timedelta(0)


def test_database_holds_only_the_hash_of_the_secret(keys: ApiKeys, engine: Engine) -> None:
    issued = keys.create("ci", [Scope.ADMIN])
    secret = issued.token.removeprefix(f"aik_{issued.key.key_id}_")
    assert len(secret) >= 40
    with engine.connect() as connection:
        rows = connection.execute(select(ApiKeyRecord.__table__)).mappings().all()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    assert secret not in stored and issued.token not in stored
    assert issued.key.key_id in stored
    assert len(rows[0]["secret_sha256"]) == 64
    assert "***" in repr(issued) and secret not in repr(issued) and secret not in str(issued)


def test_a_wrong_secret_or_a_tampered_key_id_is_refused(keys: ApiKeys) -> None:
    issued = keys.create("ci", [Scope.ADMIN])
    other = keys.create("other", [Scope.INSPECT])
    _, key_id, secret = issued.token.split("_", 2)
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    assert keys.verify(f"aik_{key_id}_{flipped}") is None
    assert keys.verify(f"aik_{key_id}_{secret[:-1]}") is None
    assert keys.verify(f"aik_{other.key.key_id}_{secret}") is None
    unknown_id = "0" * 8 if key_id != "0" * 8 else "1" * 8
    assert keys.verify(f"aik_{unknown_id}_{secret}") is None
    assert keys.verify(f"{issued.token}\n") is None and keys.verify(f" {issued.token}") is None
    assert keys.verify(issued.token) == issued.key


@pytest.mark.parametrize(
    "token",
    [
        "",
        "aik_",
        "aik_x_y",
        "aik__",
        "aik_0badcafe_",
        "Bearer aik_0badcafe_" + "a" * 43,
        "ключ_🔑_\u0000_\ud800",
        "aik_0badcafe_" + "é" * 43,
        "aik_" + "é" * 8 + "_" + "a" * 43,
        "aik_0badcafe_" + "a" * 10_000,
        "x" * 10_000,
        "aik_0badcafe_' OR '1'='1",
    ],
)
def test_malformed_tokens_are_refused_without_raising(keys: ApiKeys, token: str) -> None:
    keys.create("ci", [Scope.ADMIN])
    assert keys.verify(token) is None


def test_a_revoked_key_stops_verifying_but_stays_listed(keys: ApiKeys) -> None:
    kept = keys.create("kept", [Scope.INSPECT])
    gone = keys.create("gone", [Scope.REVIEW])
    assert keys.count_active() == 2
    revoked = keys.revoke(gone.key.key_id)
    assert revoked.revoked_at is not None and not revoked.active
    assert keys.verify(gone.token) is None
    assert keys.verify(kept.token) == kept.key
    assert keys.count_active() == 1
    listed = keys.list()
    assert [key.name for key in listed] == ["kept", "gone"]
    assert listed[1] == revoked and listed[0].revoked_at is None


def test_revoking_twice_keeps_the_first_time_and_unknown_ids_are_errors(keys: ApiKeys) -> None:
    issued = keys.create("ci", [Scope.ADMIN])
    first = keys.revoke(issued.key.key_id)
    again = keys.revoke(issued.key.key_id)
    assert again.revoked_at == first.revoked_at
    assert keys.list() == [first]
    with pytest.raises(ConfigError, match="no API key has id 'deadbeef'"):
        keys.revoke("deadbeef")


def test_list_is_oldest_first(keys: ApiKeys) -> None:
    names = [f"key-{index}" for index in range(5)]
    for name in names:
        keys.create(name, [Scope.INSPECT])
    assert [key.name for key in keys.list()] == names
    assert keys.count_active() == 5


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("ci", ["inspect", "delete"], "unknown API key scope 'delete'; choose from inspect, review, admin"),
        ("ci", ["ADMIN"], "unknown API key scope 'ADMIN'"),
        ("ci", [], "at least one scope"),
        ("", [Scope.INSPECT], "needs a name"),
        ("   ", [Scope.INSPECT], "needs a name"),
        ("x" * 129, [Scope.INSPECT], "limit is 128"),
    ],
)
def test_invalid_names_and_scopes_are_config_errors(keys: ApiKeys, name: str, scopes: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        keys.create(name, scopes)
    assert keys.list() == []


def test_a_lone_scope_string_is_one_scope_not_its_letters(keys: ApiKeys) -> None:
    assert keys.create("ci", Scope.REVIEW).key.scopes == {Scope.REVIEW}
    assert keys.create("ci", "admin").key.scopes == {Scope.ADMIN}


def test_admin_implies_every_scope_but_review_does_not_imply_inspect(keys: ApiKeys) -> None:
    admin = keys.create("admin", [Scope.ADMIN]).key
    review = keys.create("reviewer", [Scope.REVIEW]).key
    inspect = keys.create("camera", [Scope.INSPECT]).key
    assert all(admin.allows(scope) for scope in Scope)
    assert review.allows(Scope.REVIEW) and not review.allows(Scope.INSPECT) and not review.allows(Scope.ADMIN)
    assert inspect.allows(Scope.INSPECT) and not inspect.allows(Scope.REVIEW) and not inspect.allows(Scope.ADMIN)


def test_two_keys_get_different_ids_and_tokens(keys: ApiKeys) -> None:
    issued = [keys.create("same name", [Scope.INSPECT]) for _ in range(20)]
    assert len({item.key.key_id for item in issued}) == 20
    assert len({item.token for item in issued}) == 20
    for item in issued:
        assert keys.verify(item.token) == item.key


def test_api_key_round_trips_through_json() -> None:
    key = ApiKey(key_id="0badcafe", name="ci", scopes={Scope.INSPECT}, created_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert ApiKey.model_validate_json(key.model_dump_json()) == key


def test_a_clashing_key_id_is_drawn_again(keys: ApiKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["0badcafe", "0badcafe", "0badcafe", "feedf00d"])
    monkeypatch.setattr("autoinspect.store.api_keys.secrets.token_hex", lambda _nbytes: next(drawn))
    first = keys.create("first", [Scope.INSPECT])
    second = keys.create("second", [Scope.INSPECT])
    assert (first.key.key_id, second.key.key_id) == ("0badcafe", "feedf00d")
    assert keys.verify(first.token) == first.key and keys.verify(second.token) == second.key
    assert [key.name for key in keys.list()] == ["first", "second"]
