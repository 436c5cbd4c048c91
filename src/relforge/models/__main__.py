"""``python -m relforge.models``: the ``relforge models`` commands on their own."""

from relforge.errors import RelforgeError
from relforge.logs import print_error
from relforge.models.cli import app


def main() -> None:
    try:
        app()
    except RelforgeError as exc:
        print_error(exc)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
