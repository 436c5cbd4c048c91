"""``python -m relforge.finetune --run URI``: ``relforge finetune-tiers`` with the default configuration."""

import sys

from relforge.cli import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "finetune-tiers", *sys.argv[1:]]
    main()
