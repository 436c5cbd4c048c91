"""``python -m relforge.models``: the ``relforge models`` commands on their own."""

from relforge.cli import console
from relforge.errors import RelforgeError
from relforge.models.cli import app


def main() -> None:
    try:
        app()
    except RelforgeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
