"""The report: the index and its sections (`build`), tables in Markdown, CSV and LaTeX (`tables`), the
study's cells with their statistics, one family per table (`study_tables`), the thesis's layouts and published
numbers (`thesis_layout`), how many seeds a difference needs (`seeds_table`), the masking as trained
(`training_table`), retrieval by ITC alone (`itc_table`), the probe's tables (`probe_tables`), the figures (`figures`) and a study's evidence, from which
its report rebuilds (`evidence`).
"""
