"""The helpers every package uses, and nothing of the project's science: errors meant for the user and the
interrupt exit (`errors`), write-to-temporary-then-rename (`atomic`), progress lines for long work (`progress`),
headless reproducible figures (`figures`), the one stage rule: same settings or refuse, done so skip (`stage`), the
one device pick (`devices`), files wherever they live: a path, http(s)://, an fsspec URL or pipe:, read and
published (`urls`). It imports nothing of ours.
"""
