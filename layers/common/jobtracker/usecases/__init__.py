"""Use cases: what each function does, in domain terms. They raise domain errors, take their
collaborators as parameters (jobtracker.wiring.Deps) and know nothing of HTTP."""
