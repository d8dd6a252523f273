"""``python -m rtgan.cli``: the ``rtgan`` command (what ``torchrun -m rtgan.cli train ...`` runs)."""
import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
