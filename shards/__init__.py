"""The posmask shard format (schema 1): the one contract between pipeline, trainer and other projects.

It holds the format only: the UPOS id table (`upos`), the members of a sample and their encoding (`schema`), the
manifest and `sizes.json` (`manifest`), a reader of decoded samples wherever the output lives (`reader`), the check
of each shard against its manifest entry (`verify`), the tokenizer and its shipped vocabulary (`tokenizer`,
`vocab/`), the POS histogram (`histogram`) and the dataset card (`card`); see README.md. Importing it is cheap;
heavy dependencies (webdataset, transformers) load on first use.
"""
from shards.schema import SCHEMA_VERSION, SchemaVersionError
from shards.upos import NOT_A_WORD, STUDIED_CLASSES, UPOS_ID, UPOS_NAMES

__all__ = ["NOT_A_WORD", "SCHEMA_VERSION", "STUDIED_CLASSES", "SchemaVersionError", "UPOS_ID", "UPOS_NAMES"]
