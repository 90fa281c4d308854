"""The jobtracker client: `JobTracker` (Python) and the `jobtracker` command line."""

from jobtracker_client.client import ApiError, Bearer, JobTracker, SigV4, WaitTimeout

__all__ = ["ApiError", "Bearer", "JobTracker", "SigV4", "WaitTimeout"]
