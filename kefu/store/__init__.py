"""The stores: one database layer (`sql.py`) under the records and the desk's conversations.

SQLite by default (a file, nothing to install); PostgreSQL when KEFU_DATABASE_URL
is a postgresql:// URL. The same tests run against both.
"""

from kefu.store.records import Record, RecordStore, open_store
from kefu.store.sql import Database, StoreError, open_database, store_url

__all__ = [
    "Database",
    "Record",
    "RecordStore",
    "StoreError",
    "open_database",
    "open_store",
    "store_url",
]
