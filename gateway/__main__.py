"""``python -m gateway`` is the ``shenguan`` command."""

from gateway.cli import main

main()
