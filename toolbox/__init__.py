"""The helpers every package uses, and nothing of the project's science: errors meant for the user and the
interrupt exit (`errors`), write-to-temporary-then-rename (`atomic`), progress lines for long work (`progress`),
headless reproducible figures (`figures`). It imports nothing of ours.
"""
