"""`posmask tag-shards`: read captions and images, tag with spaCy, align to BERT wordpieces, write shards.

Modules: `normalize` (caption clean-up), `tagger` + `align` (spaCy UPOS -> wordpieces), `images`
(check / re-encode), `sources/` (coco, img2dataset, table, scenes), `writer` (deterministic tars and
per-shard parts), `worker` (one Ray task = one output shard), `outputs` (captions/rejects parquet,
histogram, manifest), `state` (resume / refusal of an existing OUT), `orchestrate` (Ray driver), `cli`.
The built-in synthetic sample is made by the top-level `scenes` package; `sources/scenes` only reads it.
"""
