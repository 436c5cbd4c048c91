"""``python -m relforge``: the ``relforge`` command line."""

from relforge.cli import main

if __name__ == "__main__":
    main()
