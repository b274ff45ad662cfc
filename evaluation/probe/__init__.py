"""The caption probe: which words does a model read? The task (`evaluate`), its perturbations (`perturb`)
and the seed's templates and count curve (`templates`).
"""
