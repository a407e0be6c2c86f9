"""One store interface for records (tickets, returns, suggestions, surveys).

SQLite by default (a file, nothing to install); PostgreSQL when KEFU_DATABASE_URL
is a postgresql:// URL. The same tests run against both.
"""

from kefu.store.records import Record, RecordStore, StoreError, open_store, store_url

__all__ = ["Record", "RecordStore", "StoreError", "open_store", "store_url"]
