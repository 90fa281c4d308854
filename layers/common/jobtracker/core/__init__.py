"""The job, its attempts and every rule that moves them: no I/O, no AWS."""
