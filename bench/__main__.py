"""`python -m bench`: the whole benchmark (see `bench.run`); `BENCH_QUICK=1` for a short run."""

import sys

from bench.run import main

sys.exit(main())
