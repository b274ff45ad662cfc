"""The second system (seeds 002 and 003): a captioner over one fixed image encoder's frozen features, trained
on the run engine, and the two things built on it. The captioner (`captioner`), what it reads (`data`), its
training stages (`train`), caption metrics (`metrics`) and the stage rule shared by every trained stage (`stages`);
the SCST probe (`scst/`) and ViZer (`vizer/`).
"""
