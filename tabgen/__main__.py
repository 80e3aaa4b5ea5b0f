"""``python -m tabgen``: the ``tabgen`` command where no script is on the PATH."""

from .cli import main

if __name__ == "__main__":
    main()
