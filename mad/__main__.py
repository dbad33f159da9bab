"""``python -m mad``: the ``mad`` command."""

from mad.cli import main

if __name__ == "__main__":
    main()
