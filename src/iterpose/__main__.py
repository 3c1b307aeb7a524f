"""``python -m iterpose ...`` (also what ``torchrun -m iterpose train ...`` runs): the ``iterpose`` command."""

import sys

from iterpose.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
