"""The API's page sizes: the largest page each list answers, and its default. One owner: the
routes check them, the client and the CLI take their defaults from here."""

MAX_JOBS_PAGE, JOBS_PAGE = 100, 25
MAX_LOG_PAGE, LOG_PAGE = 10000, 1000
MAX_SCHEDULE_RUNS, SCHEDULE_RUNS = 25, 5
MAX_STATS_HOURS, STATS_HOURS = 168, 24
