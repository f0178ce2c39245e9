"""`python -m app`: the `postrag` command (how `postrag serve` starts its child processes)."""

from app.cli import main

if __name__ == "__main__":
    main()
