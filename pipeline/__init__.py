"""`posmask tag-shards`: read captions and images, tag with spaCy, align to BERT wordpieces, write shards.

Modules: `items` (the plain data passed between driver, sources and workers), `normalize` (caption clean-up),
`tagger` + `align` (spaCy UPOS -> wordpieces; `upos_rules`: the
attribute_ruler compiled into an exact lookup), `images` (check / re-encode), `sources/` (coco, img2dataset,
table, scenes), `writer` + `tar_members` (deterministic tars and per-shard parts), `worker` (one task = one
output shard), `outputs` (captions/rejects parquet, histogram, manifest), `state` (resume / refusal of an
existing OUT), `orchestrate` (the driver), `shard_runs` (shards made in process or as Ray tasks; `reaper`
removes a local Ray whose driver was killed), `cli`; `retokenize/` (`posmask retokenize`: another tokenizer's tokens
for an output, on the same driver).
The built-in synthetic sample is made by the top-level `scenes` package; `sources/scenes` only reads it.
"""
