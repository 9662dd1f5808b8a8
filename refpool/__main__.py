"""`python -m refpool conform TARGET`, `python -m refpool trace`: the commands of cli.py.

With no arguments, `python -m refpool` shows a short demonstration of a
pool's life, lost worker included.
"""

from __future__ import annotations

import os
import sys

from . import Pool, WorkerLostError


def _square(x: int) -> int:
    return x * x


def _die(code: int) -> None:
    os._exit(code)


def main() -> int:
    pool = Pool(2)
    print(f"started:    {pool!r}")
    print(f"map:        {pool.map(_square, range(10))}")
    lost = pool.apply_async(_die, (7,))
    try:
        lost.get(timeout=30)
    except WorkerLostError as error:
        print(f"lost:       {error}")
    print(f"still runs: {pool.apply(_square, (12,))} from a replacement worker")
    pool.close()
    print(f"closed:     {pool!r}")
    pool.join()
    print(f"joined:     {pool!r}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        from .cli import main as cli_main

        sys.exit(cli_main())
    sys.exit(main())
