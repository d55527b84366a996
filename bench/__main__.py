"""`make bench`: run every benchmark module in this folder (each has a
`main()` that prints its figures), or only those named on the command line."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                           if not m.name.startswith("_"))
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench/{name}.py")
        module.main()
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
