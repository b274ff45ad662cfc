"""`posmask retokenize`: another tokenizer's tokens for a tag-shards output, without tagging again.

The shards keep each caption's words, their UPOS and their character spans, so any Hugging Face fast tokenizer's
tokens get exact UPOS from them: a token takes the UPOS of the word holding its first character. Modules:
`pieces` (a tokenizer, its identity for the manifest, its tokens aligned to the words), `worker` (one input shard
-> one output shard: images, `txt` and `json` passed through, `ids.npy`, `pos.npy`, `word.npy` made anew), `run`
(the driver, on tag-shards' own: Ray tasks, resume, the output's files and card), `cli`.
"""
