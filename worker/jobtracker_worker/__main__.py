import sys

from jobtracker_worker.main import main

sys.exit(main())
