"""Binding the store to its KEK: first use, opening after a crash, and key rotation.

Rotation order, chosen so that a crash at any point leaves a KEK file that opens the store:

1. keep the old KEK as `retired` (durable), then make the new KEK current (atomic);
2. in ONE database transaction, re-wrap every data key and record the new KEK id;
3. after the commit, discard the retired KEK.

If the process dies between 1 and 3, `settle` (run on every open) reads which KEK id the
database records and makes that KEK current again from the retired copy, then discards
the KEK files the database does not use. All of this runs under the keeper's lock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, bindparam, inspect, select, update

from medspace.store import crypto
from medspace.store.crypto import Kek
from medspace.store.errors import KeyMismatchError, StoreConfigError
from medspace.store.keyring import KekKeeper
from medspace.store.schema import SCHEMA_VERSION, data_key, metadata, store_meta

_REWRAP_CHUNK = 5000


def settle(engine: Engine, keeper: KekKeeper, *, create: bool, url_for_messages: str) -> Kek:
    """Bind the database to the keeper's KEK and return the KEK that opens the store.

    With `create`, makes the tables and records the current KEK in an empty database.
    Finishes or undoes an interrupted rotation. Caller holds `keeper.lock()`.
    Raises `KeyMismatchError` if no kept KEK matches, `StoreConfigError` if the database
    holds no store (and `create` is false), a store of another version, or, on create,
    another node's store.
    """
    current = keeper.current()
    if create:
        metadata.create_all(engine)
    elif not inspect(engine).has_table(store_meta.name):
        raise StoreConfigError(
            f"the database {url_for_messages} holds no MedSpace store: check db_url in "
            "node.json, or create a node with `medspace node init DIR`"
        )
    with engine.begin() as conn:
        meta = conn.execute(select(store_meta).where(store_meta.c.id == 1)).one_or_none()
        if meta is None:
            if not create:
                raise StoreConfigError(
                    f"the database {url_for_messages} has MedSpace tables but no store "
                    "record: it was not made by `medspace node init`; use an empty database"
                )
            conn.execute(
                store_meta.insert().values(
                    id=1,
                    schema_version=SCHEMA_VERSION,
                    kek_id=current.key_id,
                    kek_check=crypto.kek_check_value(current),
                    created=datetime.now(UTC).replace(tzinfo=None),
                )
            )
            recorded_id, check = current.key_id, None
        else:
            recorded_id, check = meta.kek_id, meta.kek_check
            if meta.schema_version != SCHEMA_VERSION:
                raise StoreConfigError(
                    f"the store has schema version {meta.schema_version}, this MedSpace "
                    f"reads version {SCHEMA_VERSION}: upgrade MedSpace or migrate the store"
                )
    if create and meta is not None and recorded_id != current.key_id:
        raise StoreConfigError(
            f"the database {url_for_messages} already holds another node's MedSpace store: "
            "give init_node an empty database"
        )
    if recorded_id != current.key_id:
        kept = [k for k in keeper.retired() if k.key_id == recorded_id]
        if not kept:
            raise KeyMismatchError(
                "cannot unwrap data keys: the key file does not match this store (the store "
                f"uses key {recorded_id}, the node has key {current.key_id}); restore the "
                "node's kek.key from backup"
            )
        crypto.verify_kek(kept[0], check or b"")
        keeper.make_current(kept[0])  # an interrupted rotation: the database kept the old key
        current = kept[0]
    elif check is not None:
        crypto.verify_kek(current, check)
    for stale in keeper.retired():
        keeper.discard(stale.key_id)
    return current


def _rewrap_all(conn: Connection, old: Kek, new: Kek) -> int:
    old_cipher, new_cipher = AESGCM(old.secret), AESGCM(new.secret)
    change = (
        update(data_key)
        .where(data_key.c.id == bindparam("b_id"))
        .values(kek_id=bindparam("b_kek_id"), wrapped=bindparam("b_wrapped"))
    )
    done, last_id = 0, -1
    while True:
        rows = conn.execute(
            select(data_key.c.id, data_key.c.source_id, data_key.c.kek_id, data_key.c.wrapped)
            .where(data_key.c.id > last_id)
            .order_by(data_key.c.id)
            .limit(_REWRAP_CHUNK)
        ).all()
        if not rows:
            return done
        params = []
        for row_id, owner, kek_id, wrapped in rows:
            if kek_id != old.key_id:
                raise KeyMismatchError(
                    f"a data key is wrapped under key {kek_id}, not the store's key "
                    f"{old.key_id}; the store is inconsistent: restore it from backup"
                )
            dek = crypto.unwrap_data_key(old_cipher, wrapped, owner)
            params.append(
                {
                    "b_id": row_id,
                    "b_kek_id": new.key_id,
                    "b_wrapped": crypto.wrap_data_key(new_cipher, dek, owner),
                }
            )
        conn.execute(change, params)
        done += len(params)
        last_id = rows[-1][0]


def rewrap(engine: Engine, old: Kek, new: Kek) -> int:
    """Re-wrap every data key from `old` to `new` and record `new`, in one transaction.

    Returns the number of re-wrapped keys. Raises `KeyMismatchError` if the database does
    not use `old`. The first statement takes the write lock (SQLite) / the store_meta row
    lock (PostgreSQL), so ingests that add data keys wait or fail instead of interleaving.
    """
    with engine.begin() as conn:
        claimed = conn.execute(
            update(store_meta)
            .where(store_meta.c.id == 1, store_meta.c.kek_id == old.key_id)
            .values(kek_id=new.key_id, kek_check=crypto.kek_check_value(new))
        ).rowcount
        if claimed != 1:
            raise KeyMismatchError(
                "cannot rotate: the store does not use the node's current key; reopen the "
                "node (another process may have rotated it)"
            )
        return _rewrap_all(conn, old, new)
