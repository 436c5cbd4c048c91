"""``python -m relforge.ingest esci --out URI``: the ingest commands with the default configuration."""

from relforge.errors import RelforgeError
from relforge.ingest.cli import app
from relforge.logs import print_error


def main() -> None:
    try:
        app()
    except RelforgeError as exc:
        print_error(exc)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
