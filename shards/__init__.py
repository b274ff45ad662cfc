"""The posmask shard format (schema 1): the one contract between pipeline, trainer and other projects.

Importing this package is cheap; heavy dependencies (webdataset, transformers) load on first use.
"""
from shards.errors import SchemaVersionError, UserError
from shards.schema import SCHEMA_VERSION
from shards.upos import NOT_A_WORD, STUDIED_CLASSES, UPOS_ID, UPOS_NAMES

__all__ = [
    "NOT_A_WORD",
    "SCHEMA_VERSION",
    "STUDIED_CLASSES",
    "SchemaVersionError",
    "UPOS_ID",
    "UPOS_NAMES",
    "UserError",
]
