"""The report: the index and its sections (`build`), tables in Markdown, CSV and LaTeX (`tables`), the
study's cells with their statistics (`study_tables`), the thesis's layouts and published numbers (`thesis_layout`),
the masking as trained (`training_table`), the probe's tables (`probe_tables`) and the figures (`figures`).
"""
