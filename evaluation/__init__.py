"""Evaluation of pre-trained posmask runs and the thesis-style report, in rooms: `core/` (the scoring loop, per-item
scores, statistics, run metadata), one room per task (`retrieval/`, `valse/`, `vqa/`, `probe/`, each with its
metric), and `report/` (tables and figures). `cli_eval` (`posmask eval`) and `cli_report` (`posmask report`) are
the commands; heavy libraries load only inside them.
"""
