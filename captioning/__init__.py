"""The second system (seeds 002 and 003): a captioner over one fixed image encoder's frozen features, trained
on the run engine, and the two things built on it. The captioner (`captioner`), what it reads (`data`), its
training stages (`train`), caption metrics (`metrics`), the stage rule shared by every trained stage (`stages`) and
what the commands read from their command lines (`inputs`); the SCST probe (`scst/`) and ViZer (`vizer/`).
"""
