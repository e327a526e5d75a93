"""``python -m smfusion.cli ...`` is ``smfusion ...``."""

from smfusion.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
