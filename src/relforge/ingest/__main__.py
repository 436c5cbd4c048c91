"""``python -m relforge.ingest esci --out URI``: the ingest commands with the default configuration."""

from rich.console import Console

from relforge.errors import RelforgeError
from relforge.ingest.cli import app


def main() -> None:
    try:
        app()
    except RelforgeError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
